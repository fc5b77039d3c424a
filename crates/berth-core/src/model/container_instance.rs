//! Placeholder: filled in by the container_instance work.
