"""The edge against OpenAI's published OpenAPI contract, fuzzed with schemathesis.

The spec lives in the shared folder beside the repository (it is OpenAI's, not ours, and is
not copied here). Checks: no server error for any generated request, and every documented
answer (200) has the content type and shape the contract promises. Undocumented statuses are
expected — the contract lists only 200 and 429, while a gateway must also answer 400, 401, 404.

/v1/responses streams are checked for server errors and content type but not event shape:
schemathesis validates an SSE event that carries an `event:` line as the raw event rather
than its JSON data (each such event validates on its own against ResponseStreamEvent), so the
shape check would fail on OpenAI's own wire format.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

SPEC = pathlib.Path(__file__).resolve().parents[3] / "shared" / "openai-openapi" / "openapi.onekey.yaml"
ALL_CHECKS = "not_a_server_error,content_type_conformance,response_schema_conformance"


def fuzz(stack, key: str, cwd: pathlib.Path, checks: str, *selection: str) -> subprocess.CompletedProcess:
    st = pathlib.Path(sys.executable).with_name("st")
    return subprocess.run(
        [str(st), "run", str(SPEC), "--url", stack.base_url, "-H", f"Authorization: Bearer {key}",
         "--checks", checks, "--max-examples", "40", "--seed", "1", "--phases", "examples,coverage,fuzzing",
         "--request-timeout", "30", "--no-color",
         # Schemathesis feeds GET /models/{model} the ids GET /models returns; each holds a `/`
         # (`openai/gpt-4.1`), which it cannot put in one path segment and filters out. With 40+
         # models that trips Hypothesis' "filtered too much" health check: a verdict on the test
         # data, not on the edge (every generated request still runs and is checked).
         "--suppress-health-check", "filter_too_much", *selection],
        cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_edge_holds_to_the_openai_contract_under_fuzzing(stack, client_key, tmp_path):
    if not SPEC.exists():
        if os.environ.get("CI"):
            pytest.fail(f"the OpenAPI spec is missing at {SPEC}")
        pytest.skip(f"OpenAI's OpenAPI spec not found beside the repository ({SPEC})")
    pytest.importorskip("schemathesis")
    key = client_key[1]
    for checks, selection in ((ALL_CHECKS, ("--exclude-path", "/responses")),
                              ("not_a_server_error,content_type_conformance", ("--include-path", "/responses"))):
        proc = fuzz(stack, key, tmp_path, checks, *selection)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        assert "Tested:" in proc.stdout
