"""Streaming timings, token usage and cost, as the exported spans report them."""

from __future__ import annotations

import math

from conftest import TBT_S, TTFT_S, DemoRun
from demo_files import CLIENT, SERVER, FileSpan, by_trace, load_spans

from otel_ml import semconv
from otel_ml.pricing import PriceTable

# The simulator sleeps to absolute deadlines, so its own measurements are tight;
# the api measures after a localhost hop and SSE parsing on a shared 2-core box.
SERVER_TTFT_SLACK_S = 0.1
CLIENT_TTFT_SLACK_S = 0.2
TBT_SLACK_S = 0.004


def _pair(spans: list[FileSpan]) -> tuple[FileSpan, FileSpan]:
    """(the api's chat span, the llm service's server span) of one trace."""
    chat = next(s for s in spans if s.service == "rag-api" and s.name.startswith("chat "))
    served = next(s for s in spans if s.service == "rag-llm" and s.kind == SERVER)
    return chat, served


def test_ttft_and_tbt_on_spans_match_the_simulated_delays(demo: DemoRun) -> None:
    traces = by_trace(load_spans(demo.out_dir))
    checked = 0
    for outcome in demo.answered:
        assert outcome.trace_id is not None
        chat, served = _pair(traces[outcome.trace_id])
        server_ttft = served.attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
        client_ttft = chat.attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
        assert TTFT_S <= server_ttft <= TTFT_S + SERVER_TTFT_SLACK_S
        # The client waits for the server, plus a network hop: never less.
        assert server_ttft <= client_ttft <= server_ttft + CLIENT_TTFT_SLACK_S
        chunks = served.attrs[semconv.LLM_OUTPUT_CHUNK_COUNT]
        assert chat.attrs[semconv.LLM_OUTPUT_CHUNK_COUNT] == chunks
        if chunks > 1:
            for span in (served, chat):
                tbt = span.attrs[semconv.LLM_TIME_PER_OUTPUT_CHUNK_MEAN]
                assert math.isclose(tbt, TBT_S, abs_tol=TBT_SLACK_S), (span.service, tbt)
            checked += 1
    assert checked >= 3


def test_usage_and_cost_agree_between_api_llm_and_price_table(demo: DemoRun) -> None:
    traces = by_trace(load_spans(demo.out_dir))
    prices = PriceTable.load()
    for outcome in demo.answered:
        assert outcome.trace_id is not None
        chat, served = _pair(traces[outcome.trace_id])
        tokens = (chat.attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS],
                  chat.attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS])
        assert tokens == (served.attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS],
                          served.attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS])
        # ...and equal to what the api returned to its caller
        assert tokens == (outcome.input_tokens, outcome.output_tokens)
        assert chat.attrs[semconv.LLM_USAGE_ESTIMATED] is False  # provider-reported usage
        assert served.attrs[semconv.LLM_OUTPUT_CHUNK_COUNT] == tokens[1]  # one token per chunk
        price = prices.lookup(chat.attrs[semconv.GEN_AI_REQUEST_MODEL])
        assert price is not None
        assert math.isclose(chat.attrs[semconv.GEN_AI_USAGE_COST_AMOUNT], price.cost(*tokens),
                            rel_tol=1e-12)
        assert chat.attrs[semconv.GEN_AI_USAGE_COST_CURRENCY] == "USD"
        assert chat.kind == CLIENT
