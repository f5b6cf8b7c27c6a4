"""Every shipped config loads and validates, at full size and as ':tiny'."""

import pytest
from conftest import REPO

from cyclejax import config as config_lib
from cyclejax.errors import UserError

# configs/sft_*.py follow the SFT-GAN explainer's own schema (tests/sft checks them).
CONFIGS = sorted(p.name for p in (REPO / "configs").glob("*.py") if not p.name.startswith("sft_"))


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


def test_a_key_the_checkpoint_lacks_compares_as_its_default():
  current = config_lib.base_config()
  saved = config_lib.flatten(config_lib.base_config())
  del saved["cycle_noise"], saved["xai.mask_gan_ratio"]  # keys added after it was written
  saved["some_old_key"] = 1  # a key this cyclejax no longer has
  assert config_lib.check_resumable(saved, current) == []
  current.cycle_noise = 0.3
  with pytest.raises(UserError, match="config.cycle_noise is 0.3 .* trained with 0.0"):
    config_lib.check_resumable(saved, current)


def test_override_sets_dotted_keys_and_names_unknown_ones():
  c = config_lib.override(config_lib.base_config(), {"shapes.size": 48, "lr": 1e-3})
  assert (c.shapes.size, c.lr) == (48, 1e-3)
  with pytest.raises(UserError, match="unknown config key 'shapes.nope'"):
    config_lib.override(c, {"shapes.nope": 1})
  with pytest.raises(UserError, match="config.ngf='wide'"):
    config_lib.override(c, {"ngf": "wide"})


@pytest.mark.parametrize("name", config_lib.VARIANTS)
def test_named_variants_change_only_what_they_name(name):
  base = config_lib.base_config()
  c = config_lib.variant(base, name)
  changed = {k for k, v in config_lib.flatten(c).items() if config_lib.flatten(base)[k] != v}
  expected = {
    "baseline": set(),
    "xai": {"xai.enabled"},
    "xai_mask": {"xai.enabled", "xai.mask_input"},
    "bfloat16": {"dtype"},
    "two_domain": set(),
    "star": {"pairs"},
    "full": {"pairs"},
    "xai_paper": {
      "netG",
      "netD",
      "xai.enabled",
      "xai.saliency_of",
      "xai.alpha",
      "xai.damping",
      "xai.mask_input",
    },
  }[name]
  assert changed == expected
