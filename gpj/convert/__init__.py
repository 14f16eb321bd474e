"""PyTorch weights converted for gpj: key layout (torch_layout), the store on disk (store), CLI."""
