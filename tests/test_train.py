"""The train step and loop: losses go down, numbers repeat, devices and restarts agree."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import chex
import jax
import numpy as np
import pytest
from conftest import REPO, tiny_config

from cyclejax import config as config_lib
from cyclejax import data, train, xla
from cyclejax.analysis.describe import describe
from cyclejax.data.images import to_float
from cyclejax.errors import UserError
from cyclejax.gan import losses
from cyclejax.gan import state as gan_state
from cyclejax.metrics import evaluate as evaluation
from cyclejax.names import LOSS_NAMES, Topology, evaluation_scalars, metric_goal
from cyclejax.run import checkpoints, multihost
from cyclejax.run.writer import read_jsonl


@pytest.fixture(scope="module")
def setup():
  """A tiny GAN, its compiled step and two fixed batches (compiled once per module)."""
  config = tiny_config(batch_size=2)
  gan = train.build_gan(config)
  mesh = multihost.make_mesh()
  _, batch_sharding = multihost.shardings(mesh)
  domains = data.open_domains(config)
  batches = [
    multihost.global_batch(b, batch_sharding)
    for b in data.train_dataset(domains, config, num_steps=2)
  ]
  state = train.init_state_on(gan, config.seed, mesh)
  return config, gan, mesh, batches, train.compile_train_step(gan, state, mesh)


def run_steps(setup, n, batch_index=None):
  config, gan, mesh, batches, step = setup
  state = train.init_state_on(gan, config.seed, mesh)
  history = []
  for i in range(n):
    state, metrics = step(state, batches[i % 2 if batch_index is None else batch_index])
    history.append(jax.device_get(metrics))
  return state, history


def test_a_step_lowers_the_generator_loss_on_a_fixed_batch(setup):
  _, history = run_steps(setup, 3, batch_index=0)
  # Metrics of step k are computed with the parameters after step k - 1.
  assert history[1]["G"] < history[0]["G"]
  assert history[2]["G"] < history[1]["G"]
  assert history[2]["cycle_A"] + history[2]["cycle_B"] < (
    history[0]["cycle_A"] + history[0]["cycle_B"]
  )


def test_same_seed_same_numbers_and_the_step_compiles_once(setup):
  state1, h1 = run_steps(setup, 2)
  state2, h2 = run_steps(setup, 2)
  assert h1 == h2
  chex.assert_trees_all_equal(state1.params, state2.params)
  assert setup[4]._cache_size() == 1  # noqa: SLF001 - no silent recompiles
  assert set(LOSS_NAMES) <= set(h1[0]) and "lr" in h1[0]


def test_metrics_are_the_reference_losses(setup):
  """Recompute step 1's losses by hand from the initial parameters."""
  config, gan, mesh, batches, _ = setup
  state = train.init_state_on(gan, config.seed, mesh)
  _, history = run_steps(setup, 1)

  @xla.jit  # compiled as the step is, so both take the same convolution path
  def hand(params, batch):
    real_A, real_B = to_float(batch["A"]), to_float(batch["B"])
    G = lambda name, x: gan.G.apply({"params": params[name]}, x)
    D = lambda name, x: gan.D.apply({"params": params[name]}, x)
    fake_B, fake_A = G("G_A", real_A), G("G_B", real_B)
    return {
      "G_A": losses.gan_loss(prediction=D("D_A", fake_B), target_is_real=True, gan_mode="lsgan"),
      "cycle_B": 10.0 * losses.l1(prediction=G("G_A", fake_A), target=real_B),
      "idt_B": 10.0 * 0.5 * losses.l1(prediction=G("G_B", real_A), target=real_A),
      # Pool: at step 1 the pool is filling, so D sees exactly the fresh fakes.
      "D_A": losses.discriminator_loss(
        pred_real=D("D_A", real_B), pred_fake=D("D_A", fake_B), gan_mode="lsgan"
      ),
    }

  for key, value in hand(state.params, batches[0]).items():
    np.testing.assert_allclose(history[0][key], value, rtol=2e-5, err_msg=key)


def test_cycle_noise_perturbs_only_the_translation_translated_back(setup):
  """config.cycle_noise (not in the reference): G_B(G_A(a) + s * eps); other terms unchanged."""
  _, _, mesh, batches, _ = setup
  config = tiny_config(batch_size=2, cycle_noise=0.5)
  gan = train.build_gan(config)
  state = train.init_state_on(gan, config.seed, mesh)
  step = train.compile_train_step(gan, state, mesh)
  _, metrics = step(train.init_state_on(gan, config.seed, mesh), batches[0])
  _, plain = run_steps(setup, 1, batch_index=0)

  @xla.jit  # compiled as the step is, so both take the same convolution path
  def hand(params, rng, batch):
    real_A, real_B = to_float(batch["A"]), to_float(batch["B"])
    G = lambda name, x: gan.G.apply({"params": params[name]}, x)
    fake_B, fake_A = G("G_A", real_A), G("G_B", real_B)
    key = jax.random.fold_in(jax.random.fold_in(rng, 0), 11)  # step 0's cycle-noise stream
    eps = jax.random.normal(key, (2, *fake_B.shape))
    return {
      "cycle_A": 10.0 * losses.l1(prediction=G("G_B", fake_B + 0.5 * eps[0]), target=real_A),
      "cycle_B": 10.0 * losses.l1(prediction=G("G_A", fake_A + 0.5 * eps[1]), target=real_B),
    }

  expected = hand(state.params, state.rng, batches[0])
  for key in ("cycle_A", "cycle_B"):
    np.testing.assert_allclose(metrics[key], expected[key], rtol=2e-5, err_msg=key)
    assert abs(float(metrics[key]) - float(plain[0][key])) > 1e-3, key
  for key in ("G_A", "G_B", "idt_A", "idt_B", "D_A", "D_B"):
    np.testing.assert_allclose(metrics[key], plain[0][key], rtol=1e-6, err_msg=key)


def test_learning_rate_is_constant_then_decays_linearly_and_never_hits_zero():
  config = tiny_config(num_steps=10, lr=1.0)
  schedule = gan_state.learning_rate(config)
  values = [float(schedule(s)) for s in range(10)]
  np.testing.assert_allclose(values, [1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2], atol=1e-6)
  config.lr_decay_steps = 4
  np.testing.assert_allclose(float(schedule(9)), 0.2)
  assert float(gan_state.learning_rate(config)(9)) == pytest.approx(0.25)
  config.lr_policy = "constant"
  assert float(gan_state.learning_rate(config)(9)) == 1.0


MULTI_DEVICE_VARIANTS = {
  "baseline": (2, {}),
  "xai": (2, {"xai.enabled": True, "xai.apply_to": "all", "xai.mask_input": True}),
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(MULTI_DEVICE_VARIANTS))
def test_multi_device_gives_the_same_losses_as_one_device(variant):
  """4 forced CPU devices against 1, for the reference step and the xAI step (gradient
  masking at G's output, soft input mask, mask discriminators). One variant per test, so
  that parallel test workers can run them side by side."""
  steps, overrides = MULTI_DEVICE_VARIANTS[variant]
  script = textwrap.dedent(f"""
      import sys, json
      sys.path.insert(0, {str(REPO / "tests")!r})
      import jax, numpy as np
      from conftest import tiny_config
      from cyclejax import data, train
      from cyclejax.run import multihost
      assert jax.device_count() == 4, jax.devices()
      out = {{}}
      name, steps = {variant!r}, {steps}
      config = tiny_config(batch_size=4, **{overrides!r})
      gan = train.build_gan(config)
      domains = data.open_domains(config)
      local = list(data.train_dataset(domains, config, num_steps=steps))
      for n in (1, 4):
        mesh = multihost.make_mesh(jax.devices()[:n])
        _, bs = multihost.shardings(mesh)
        state = train.init_state_on(gan, config.seed, mesh)
        step = train.compile_train_step(gan, state, mesh)
        hist = []
        for b in local:
          state, m = step(state, multihost.global_batch(b, bs))
          hist.append({{k: float(v) for k, v in m.items()}})
        assert len(state.params["G_A"]["stem"]["conv"]["kernel"].sharding.device_set) == n \
          if name == "baseline" else sorted(state.params) == sorted(gan.d_names + ("G_A", "G_B"))
        head = state.params["G_A"].get("net", state.params["G_A"])["head"]
        kernel = head["conv"]["kernel"]
        out[f"{{name}}/{{n}}"] = {{"hist": hist, "kernel": np.asarray(kernel).tolist()}}
      print(json.dumps(out))
  """)
  flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
  env = {"XLA_FLAGS": flags}
  proc = subprocess.run(
    [sys.executable, "-c", script],
    capture_output=True,
    text=True,
    env={**os.environ, **env},
    timeout=600,
    cwd=REPO,
  )
  assert proc.returncode == 0, proc.stderr[-4000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  one, four = out[f"{variant}/1"], out[f"{variant}/4"]
  # Only the order of float reductions differs, so the first step agrees to float32
  # rounding; from the first update on, Adam's normalised updates amplify those last bits
  # (most for parameters whose gradients are near zero).
  for i, (m1, m4) in enumerate(zip(one["hist"], four["hist"], strict=True)):
    for key in m1:
      np.testing.assert_allclose(
        m4[key],
        m1[key],
        rtol=1e-5 if i == 0 else 1e-3,
        atol=1e-6,
        err_msg=f"{variant}: {key} at step {i + 1}",
      )
  diff = np.abs(np.asarray(four["kernel"]) - np.asarray(one["kernel"]))
  assert diff.max() < 5e-4 and (diff > 1e-5).mean() < 0.01, variant
  if variant == "xai":
    assert out["xai/4"]["hist"][1]["G"] < out["xai/4"]["hist"][0]["G"]


# ---- the loop -------------------------------------------------------------------------


def test_train_and_evaluate_writes_everything(trained_workdir):
  workdir, state = trained_workdir
  assert int(state.step) == 4
  assert checkpoints.Reader(workdir).steps() == [2, 4]
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [1, 2, 4]
  for name in LOSS_NAMES:
    assert np.isfinite(records[-1][name])
  assert (workdir / "samples" / "step_0000002.png").exists()
  assert (workdir / "samples" / "step_0000004.png").exists()
  assert (workdir / "loss_curves.png").stat().st_size > 1000
  assert list((workdir / "tensorboard").iterdir())
  assert json.loads((workdir / "config.json").read_text())["netG"] == "resnet_6blocks"


def test_restart_after_a_kill_ends_with_the_same_parameters(trained_workdir, tmp_path):
  workdir, final = trained_workdir
  killed = tmp_path / "killed"
  shutil.copytree(workdir, killed)
  # A run killed somewhere after its step-2 checkpoint: step 4 never reached disk.
  shutil.rmtree(killed / "checkpoints" / "4")
  resumed = train.train_and_evaluate(tiny_config(), str(killed))
  chex.assert_trees_all_equal(jax.device_get(resumed.params), jax.device_get(final.params))
  chex.assert_trees_all_equal(jax.device_get(resumed.pools["A"]), jax.device_get(final.pools["A"]))
  # The log does not double back: steps after the checkpoint were rewritten once.
  steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
  assert steps == [1, 2, 4]


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(
  trained_workdir, tmp_path, monkeypatch
):
  workdir, _ = trained_workdir
  run = tmp_path / "nan"
  shutil.copytree(workdir, run)
  shutil.rmtree(run / "checkpoints" / "4")
  monkeypatch.setattr(losses, "l1", lambda *, prediction, target: prediction.sum() * np.nan)
  with pytest.raises(UserError, match=r"at step 3.*last good checkpoint is step 2"):
    train.train_and_evaluate(tiny_config(checkpoint_every=1), str(run))
  assert checkpoints.Reader(run).steps() == [2]


def test_resuming_with_a_different_config_names_the_field(trained_workdir):
  workdir, _ = trained_workdir
  with pytest.raises(UserError, match=r"config.ngf is 16 .* trained with 8"):
    train.train_and_evaluate(tiny_config(ngf=16), str(workdir))
  # Changing only how long to train is allowed (and already done here).
  state = train.train_and_evaluate(tiny_config(num_steps=4, log_every=1), str(workdir))
  assert int(state.step) == 4


def test_config_validation_names_the_key():
  config = tiny_config()
  config_lib.validate(config)
  for key, value, message in [
    ("netG", "resnet_7blocks", "config.netG"),
    ("crop_size", 30, "multiple of 4"),
    ("load_size", 16, "load_size=16 is smaller"),
    ("gan_mode", "wgan", "config.gan_mode"),
    ("lambda_A", -1.0, "config.lambda_A"),
    ("lr", float("nan"), "config.lr=nan must be a finite number"),
    ("init_gain", float("inf"), "config.init_gain=inf must be a finite number"),
    ("seed", -1, r"config.seed=-1 must lie in \[0, 2\*\*63\)"),
  ]:
    bad = tiny_config(**{key: value})
    with pytest.raises(UserError, match=message):
      config_lib.validate(bad)
  bad = tiny_config()
  bad.unlock()
  bad.ngff = 3
  with pytest.raises(UserError, match="unknown config key 'ngff'"):
    config_lib.validate(bad)
  bad = tiny_config(netG="unet")
  with pytest.raises(UserError, match="num_downs"):
    config_lib.validate(bad)


def test_a_longer_run_says_what_its_learning_rate_becomes(caplog):
  """A finished 4-step run resumed with num_steps=8: the decay moves, and the LR of the
  next step jumps back up (lr / 2 at update 3, lr at update 4); the log says so."""
  with caplog.at_level("WARNING"):
    train._log_schedule_change(tiny_config(lr=1.0), tiny_config(lr=1.0, num_steps=8), 4)  # noqa: SLF001
  (record,) = [r for r in caplog.records if "learning-rate schedule changed" in r.message]
  assert "num_steps 4 -> 8" in record.message
  assert "step 4 ran at lr 0.5, step 5 runs at lr 1" in record.message
  caplog.clear()
  train._log_schedule_change(tiny_config(), tiny_config(log_every=1), 4)  # noqa: SLF001
  assert not caplog.records


def test_the_step_updates_with_the_scheduled_learning_rate(setup):
  config, gan, mesh, batches, step = setup
  state = train.init_state_on(gan, config.seed, mesh)
  # A run resumed near its end: the state's schedule, not the compiled step, sets the LR.
  state = state.replace(step=state.step + 3)  # num_steps 4, decay 2: update 3 uses lr / 2
  before = np.asarray(state.params["G_A"]["stem"]["conv"]["kernel"])  # the step donates
  new, metrics = step(state, batches[0])
  assert float(metrics["lr"]) == pytest.approx(config.lr / 2)
  # Adam's first update moves each weight by about lr (m / sqrt(v) = sign(g)).
  after = np.asarray(new.params["G_A"]["stem"]["conv"]["kernel"])
  assert np.abs(after - before).max() == pytest.approx(config.lr / 2, rel=1e-2)


# ---- evaluation during training and the best checkpoint -------------------------------

# Color accuracy by step, written over the real evaluation's: the best step (4) is
# neither the first nor the latest, so only a rotation that protects it keeps it.
SCRIPTED_ACCURACY = {2: 0.5, 4: 0.9, 6: 0.7}


def eval_config(**overrides):
  defaults = dict(
    num_steps=6,
    eval_every=2,
    eval_metrics="toy",
    keep_best="color_accuracy",
    checkpoint_every=0,  # a checkpoint only at the end and at each new best
    sample_every=0,  # one sample grid and results page, at the end
    max_to_keep=1,
  )
  return tiny_config(**{**defaults, **overrides})


def test_the_best_checkpoint_by_the_metric_survives_rotation_and_resume(tmp_path, monkeypatch):
  """Also: the loop compiles its step once, with evaluations, samples and checkpoints
  between steps."""
  monkeypatch.setattr(train, "train_step", chex.assert_max_traces(train.train_step, n=1))
  real = evaluation.evaluate

  def scripted(config, params, step, **kwargs):
    results = real(config, params, step, **kwargs)
    results["scalars"]["color_accuracy"] = SCRIPTED_ACCURACY[step]
    return results

  monkeypatch.setattr(evaluation, "evaluate", scripted)
  train.train_and_evaluate(eval_config(), str(tmp_path))
  # Step 2 (the first best) was rotated away once 4 beat it; 4 outlives max_to_keep=1.
  assert checkpoints.saved_steps(tmp_path) == [4, 6]
  best = json.loads((tmp_path / "best.json").read_text())
  assert (best["step"], best["metric"], best["value"], best["better"]) == (
    4,
    "color_accuracy",
    0.9,
    "higher",
  )
  assert best["evaluation"]["step"] == 4 and "toy" in best["evaluation"]
  assert sorted(p.name for p in (tmp_path / "eval").glob("*.json")) == [
    "2.json",
    "4.json",
    "6.json",
  ]
  logged = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if "eval/color_accuracy" in r]
  assert [(r["step"], r["eval/color_accuracy"]) for r in logged] == [(2, 0.5), (4, 0.9), (6, 0.7)]
  # Every quality number keep_best may name is one the evaluation logs, and back.
  scalars = json.loads((tmp_path / "eval" / "2.json").read_text())["scalars"]
  named = {k for k in scalars if "/" not in k and metric_goal(k)}
  assert named == set(evaluation_scalars(Topology("AB"), ("toy",), toy_exact=True))
  page = (tmp_path / "index.html").read_text()
  assert "Best: step 4 by color_accuracy = 0.9 (higher is better)" in page
  assert "<b>4 best</b>" in page
  assert "best: step 4 by color_accuracy = 0.9 (higher is better)" in describe(
    str(tmp_path), tree=False, verify=False
  )
  # Resumed (nothing left to train): the run's closing rotation keeps max_to_keep=1 steps
  # and the best one only if it read the record back.
  best_json = (tmp_path / "best.json").read_text()
  train.train_and_evaluate(eval_config(), str(tmp_path))
  assert checkpoints.saved_steps(tmp_path) == [4, 6]
  assert (tmp_path / "best.json").read_text() == best_json


def test_keep_best_must_name_a_number_the_evaluation_computes():
  with pytest.raises(UserError) as e:
    config_lib.validate(eval_config(keep_best="fid_AtoB"))
  message = str(e.value)
  assert "\n" not in message
  assert message.startswith("config.keep_best='fid_AtoB' is not a number the evaluation computes")
  assert "color_accuracy (higher is better)" in message and "cycle_l1_AtoB (lower" in message
  for overrides, expected in [
    ({"eval_every": 0}, "config.keep_best='color_accuracy' needs evaluations"),
    ({"eval_metrics": "toy,fid", "keep_best": ""}, "fid need config.inception"),
    ({"eval_metrics": "toy,lpips"}, "config.eval_metrics='toy,lpips'"),
    ({"eval_resize": "nearest"}, "config.eval_resize='nearest'"),
    ({"dataset": "folder", "data_dir": "/x"}, "'toy' needs the shapes data"),
  ]:
    with pytest.raises(UserError, match=expected):
      config_lib.validate(eval_config(**overrides))
  config_lib.validate(eval_config(dataset="folder", data_dir="/x", eval_every=0, keep_best=""))
  config_lib.validate(eval_config(eval_metrics="toy,fid,kid", inception="/w", keep_best="fid_BtoA"))


def test_each_evaluation_number_says_which_way_is_better():
  assert [
    metric_goal(n)
    for n in (
      "fid_AtoB",
      "kid_CtoA",
      "cycle_psnr_BtoA",
      "cycle_l1_AtoB",
      "color_accuracy",
      "color_accuracy/circle",
      "shape_error_AtoC",
      "kid_std_AtoB",
      "G_A",
    )
  ] == ["lower", "lower", "higher", "lower", "higher", "higher", "lower", None, None]
  assert evaluation.improves("fid_AtoB", 10.0, 12.0) and not evaluation.improves("fid_AtoB", 13, 12)
  assert evaluation.improves("color_accuracy", 0.5, None)
  assert not evaluation.improves("color_accuracy", float("nan"), None)
  star = evaluation_scalars(Topology("AB,AC"), ("toy",), toy_exact=True)
  assert {"color_accuracy_CtoA", "shape_error_AtoC", "background_error_AtoB"} <= set(star)
