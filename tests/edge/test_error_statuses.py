"""The core's errors say which HTTP status the edge gives them (for the usage event of a refused
request); this holds that word to the edge's one table."""
from __future__ import annotations

import pytest

from edge.errors import INTERNAL, STATUS_TABLE
from router_core import errors


def _classes(base: type) -> list[type]:
    found = [base]
    for sub in base.__subclasses__():
        found += _classes(sub)
    return found


@pytest.mark.parametrize("cls", _classes(errors.CoreError), ids=lambda c: c.__name__)
def test_each_core_error_records_the_status_the_edge_answers(cls):
    assert cls.http_status == STATUS_TABLE.get(cls.grpc_code, INTERNAL)[0]
