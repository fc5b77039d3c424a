//! Validation of the names ECS constrains by pattern: clusters, task definition families,
//! containers, tags and attributes.

/// Whether `name` matches ECS's `^[a-zA-Z0-9_-]{1,255}$`, the pattern of cluster names,
/// task definition families and container names.
pub fn is_valid_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The message ECS users see when a name breaks the pattern, naming what to fix.
pub fn invalid_name_message(what: &str, name: &str) -> String {
    format!(
        "{what} '{name}' is invalid: up to 255 letters (uppercase and lowercase), numbers, \
         underscores, and hyphens are allowed."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_allow_letters_digits_underscores_and_hyphens_up_to_255() {
        assert!(is_valid_name("demo"));
        assert!(is_valid_name("a-B_9"));
        assert!(is_valid_name(&"x".repeat(255)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"x".repeat(256)));
        assert!(!is_valid_name("has space"));
        assert!(!is_valid_name("dot.name"));
        assert!(!is_valid_name("slash/name"));
        assert!(!is_valid_name("ünïcode"));
    }
}
