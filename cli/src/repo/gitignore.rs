//! The `.gitignore` entries `add` writes next to each output (spec §6).
