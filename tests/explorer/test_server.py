"""The explorer server's guards, without a model: strict JSON and the names it answers
to (tests/run/test_faults.py sends the abuses over real sockets)."""

import pytest

from cyclejax.explorer import server


@pytest.mark.parametrize(
  "body,message",
  [
    (b"{not json", "not JSON"),
    (b'{"size": NaN}', "NaN is not a number"),
    (b'{"size": -Infinity}', "-Infinity is not a number"),
    (b'{"size": 1e400}', "too large"),
    (b'{"a": "\xff"}', "not JSON"),
    (b"[" * 50_000 + b"]" * 50_000, "nested deeper"),
    (b'{"a": ' * 40 + b"1" + b"}" * 40, "nested deeper"),
  ],
)
def test_only_strict_shallow_json_is_accepted(body, message):
  with pytest.raises(server._BadRequest, match=message) as e:  # noqa: SLF001
    server.parse_json(body)
  assert e.value.status == 400


def test_shallow_json_with_ordinary_numbers_is_read():
  assert server.parse_json(b'{"size": 64, "scale": 0.5, "x": [[1], {"y": null}]}') == {
    "size": 64,
    "scale": 0.5,
    "x": [[1], {"y": None}],
  }


def test_the_host_names_it_answers_to():
  names = server._allowed_host_names("127.0.0.1")  # noqa: SLF001
  assert {"127.0.0.1", "localhost", "[::1]"} <= names
  assert "evil.example" not in names and "0.0.0.0" not in names
  assert "10.1.2.3" in server._allowed_host_names("10.1.2.3")  # noqa: SLF001
  wildcard = server._allowed_host_names("0.0.0.0")  # noqa: SLF001
  assert "localhost" in wildcard and "evil.example" not in wildcard
