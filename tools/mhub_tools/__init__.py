"""mhub's contributor toolchain (convert, hash, validate, manifest), itself an mhub plugin."""
