"""Provenance of published media and reproducibility of scores (pure: no Django).

- ``credentials``: the C2PA signing certificate chain (a configured one, or a demo chain made once).
- ``manifest``: sign media with a C2PA manifest (``sign_media``) and read one back, validated
  (``read_manifest``), via c2pa-python.
- ``watermark``: an invisible DWT-DCT watermark (invisible-watermark) carrying a 64-bit sample id:
  ``embed_watermark`` / ``detect_watermark``, plus the known watermarks of public generators.
- ``rendition``: the published rendition of a sample (upscaled, watermarked, signed) and
  ``strip_metadata`` (what a battle may serve: pixels only).
- ``reproducibility``: the manifest recorded with every metric result (library versions, ...).
"""
