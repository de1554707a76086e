"""The rules as data: versioned JSON files (<name>.v<N>.json) and the one loader that reads them."""
