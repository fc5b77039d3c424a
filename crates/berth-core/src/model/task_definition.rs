//! Placeholder: filled in by the task_definition work.
