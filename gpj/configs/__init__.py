"""The experiments' configs (ml_collections), their shared sections and presets.

`configs/<experiment>.py` at the top of the repository are thin files that re-export these, so
`python -m gpj.main --config=configs/probe.py[:presets]` works from a checkout.
"""
