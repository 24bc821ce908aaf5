"""Composition: putting a product into a scene.

* :mod:`staging.compose.align` — where and how big the product goes in a retrieved scene
  (copy-paste staging: scale to the old product, centre of mass, floor line).
* :mod:`staging.compose.blend` — pasting with soft edges, contact shadows and a bounded colour
  harmonisation.
* :mod:`staging.compose.placement` — ad placements (sizes) and laying a product out in one.
* :mod:`staging.compose.buckets` — aspect-ratio buckets so one generation serves many sizes.
"""
