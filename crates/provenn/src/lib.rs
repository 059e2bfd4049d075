//! provenn facade
