//! Not built yet: this crate is filled by its own issue. It exposes nothing so that nothing pretends to work.
