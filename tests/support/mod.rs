//! Helpers shared by the end-to-end tests: finding binaries, free ports, process guards.
