"""The local runtime: what AWS does around the Chalice app, done on a laptop against an emulator."""
