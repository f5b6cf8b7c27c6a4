"""Every shipped config loads and validates, at full size and as ':tiny'."""

import pytest
from conftest import REPO

from cyclejax import config as config_lib

CONFIGS = sorted(p.name for p in (REPO / "configs").glob("*.py"))


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("arg", [None, "tiny"])
def test_config_loads_and_validates(name, arg):
  c = config_lib.load_config_file(REPO / "configs" / name, arg)
  if c.dataset == "folder":
    c.data_dir = "/data/set/by/the/user"  # the one key these configs leave to the user
  config_lib.validate(c)
  if arg == "tiny":
    assert c.crop_size == 32 and c.ngf <= 8 and c.num_steps <= 10


def test_an_unknown_config_argument_is_an_error():
  with pytest.raises(ValueError, match="unknown config argument 'huge'"):
    config_lib.load_config_file(REPO / "configs" / "shapes.py", "huge")
