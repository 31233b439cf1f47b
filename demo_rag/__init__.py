"""A small multi-tenant RAG product used to demonstrate and test otel-ml.

Three FastAPI services, each its own process and ``service.name``:

- ``demo_rag.api`` (rag-api): authenticates callers, retrieves, prompts, streams answers;
- ``demo_rag.vectordb`` (rag-vectordb): hashed TF-IDF search over a bundled corpus;
- ``demo_rag.llm`` (rag-llm): an OpenAI-compatible chat endpoint backed by a simulated model
  (or a real one when ``LLM_BASE_URL`` is set).

``demo_rag.launcher`` starts them as subprocesses; ``demo_rag.driver`` is ``otel-ml demo``.
See docs/demo.md.
"""
