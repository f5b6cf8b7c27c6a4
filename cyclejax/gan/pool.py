"""The reference's ImagePool, as a pure function on a device-resident buffer.

The pool holds up to `pool_size` past fakes per discriminator. For each image of a
batch, in order (the reference's per-image rule):
  - while the pool is not full, store the image and return it;
  - once full, with probability 0.5 return a uniformly chosen stored image and put the
    new image in its slot; otherwise return the new image.
"""

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ImagePool:
  """images: [pool_size, H, W, C] buffer; count: how many slots are filled (int32)."""

  images: jax.Array
  count: jax.Array

  @classmethod
  def create(cls, pool_size: int, image_shape: tuple[int, ...], dtype=jnp.float32) -> "ImagePool":
    return cls(
      images=jnp.zeros((pool_size, *image_shape), dtype),
      count=jnp.zeros((), jnp.int32),
    )

  @property
  def size(self) -> int:
    return self.images.shape[0]


def query(pool: ImagePool, images: jax.Array, key: jax.Array) -> tuple[ImagePool, jax.Array]:
  """Passes a batch [B, H, W, C] through the pool; returns (new pool, images for D).

  With pool_size 0 the images are returned unchanged (the reference's pool_size=0).
  """
  if pool.size == 0:
    return pool, images

  def one(carry, inputs):
    buf, count = carry
    image, k = inputs
    k_swap, k_slot = jax.random.split(k)
    filling = count < pool.size
    swap = jax.random.uniform(k_swap) > 0.5
    slot = jnp.where(filling, count, jax.random.randint(k_slot, (), 0, pool.size))
    stored = buf[slot]
    # filling: store, return new; full & swap: store, return old; else keep, return new.
    write = filling | swap
    buf = jax.lax.dynamic_update_index_in_dim(buf, jnp.where(write, image, stored), slot, axis=0)
    out = jnp.where(~filling & swap, stored, image)
    return (buf, jnp.minimum(count + 1, pool.size)), out

  keys = jax.random.split(key, images.shape[0])
  (buf, count), out = jax.lax.scan(
    one, (pool.images, pool.count), (images.astype(pool.images.dtype), keys)
  )
  return ImagePool(images=buf, count=count), out.astype(images.dtype)
