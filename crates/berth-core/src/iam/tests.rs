//! IAM policy tests.
