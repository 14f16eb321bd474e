"""Data: `sources` loads normalised numpy datasets, `batches` slices them on the host, and
`canvas` builds the grid canvases on device inside jitted steps."""
