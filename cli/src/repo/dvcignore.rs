//! `.dvcignore`: gitignore-syntax patterns applied wherever a tree is walked (spec §6).
