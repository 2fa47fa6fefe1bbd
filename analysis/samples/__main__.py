"""`python -m analysis.samples`: regenerate the bundled sample clips."""

from analysis.samples import SAMPLE_DIR, regenerate

paths = regenerate()
print(f"wrote {len(paths)} clips to {SAMPLE_DIR} ({sum(p.stat().st_size for p in paths) / 1e6:.2f} MB)")
