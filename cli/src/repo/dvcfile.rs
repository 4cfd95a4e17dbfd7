//! `.dvc` files: parsing with validation, writing byte for byte as DVC does, in-place updates (spec §1).
