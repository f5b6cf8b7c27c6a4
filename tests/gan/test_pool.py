"""The image pool follows the reference's per-image rule."""

import jax
import jax.numpy as jnp
import numpy as np

from cyclejax.gan import pool


def images(values):
  return jnp.asarray(values, jnp.float32).reshape(-1, 1, 1, 1)


def test_pool_of_size_zero_passes_images_through():
  p = pool.ImagePool.create(0, (1, 1, 1))
  _, out = pool.query(p, images([1, 2]), jax.random.key(0))
  np.testing.assert_array_equal(out, images([1, 2]))


def test_filling_stores_and_returns_each_image():
  p = pool.ImagePool.create(3, (1, 1, 1))
  p, out = pool.query(p, images([1, 2]), jax.random.key(0))
  np.testing.assert_array_equal(out, images([1, 2]))
  assert int(p.count) == 2
  np.testing.assert_array_equal(p.images[:2], images([1, 2]))
  # The third image fills the pool, the fourth meets a full pool within the same batch.
  p, out = pool.query(p, images([3, 4]), jax.random.key(1))
  assert int(p.count) == 3
  assert out[0, 0, 0, 0] == 3
  second = float(out[1, 0, 0, 0])
  stored = sorted(np.asarray(p.images).ravel().tolist())
  if second == 4:
    assert stored == [1, 2, 3]
  else:
    assert second in (1, 2, 3)
    assert stored == sorted([v for v in (1, 2, 3) if v != second] + [4])


def test_full_pool_swaps_with_probability_one_half():
  full = pool.ImagePool.create(4, (1, 1, 1))
  full, _ = pool.query(full, images([1, 2, 3, 4]), jax.random.key(0))
  query = jax.jit(lambda key: pool.query(full, images([9]), key))
  swapped, slots = 0, set()
  trials = 400
  for i in range(trials):
    new, out = query(jax.random.key(100 + i))
    value = float(out[0, 0, 0, 0])
    stored = sorted(np.asarray(new.images).ravel().tolist())
    if value == 9:  # kept: the pool is unchanged
      assert stored == [1, 2, 3, 4]
    else:  # returned a stored image and put the new one in its slot
      swapped += 1
      assert value in (1, 2, 3, 4)
      assert stored == sorted([v for v in (1, 2, 3, 4) if v != value] + [9])
      slots.add(value)
  assert 0.4 < swapped / trials < 0.6
  assert slots == {1, 2, 3, 4}  # every slot can be chosen
