//! provenn-data (in progress)
