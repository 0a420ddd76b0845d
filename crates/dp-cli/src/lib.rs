//! Not built yet: the `dp` command line is filled by its own issue.
