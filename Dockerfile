# The otel-ml demo services (api, vectordb, llm): one image, the service is
# chosen by the command, e.g. `python -m demo_rag.api --host 0.0.0.0 --port 8000`
# (see docker-compose.yml). Telemetry goes to OTEL_EXPORTER_OTLP_ENDPOINT.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the packages need: the image does not change when tests or docs do.
# Two distributions: the otel-ml SDK (repo root) and the demo (demo_rag/).
COPY pyproject.toml README.md ./
COPY otel_ml ./otel_ml
COPY demo_rag ./demo_rag
RUN pip install . ./demo_rag

# Not root: the services need no privileges.
RUN useradd --system --uid 10001 --no-create-home otelml
USER 10001

EXPOSE 8000 8001 8002
CMD ["python", "-m", "demo_rag.api", "--host", "0.0.0.0", "--port", "8000"]
