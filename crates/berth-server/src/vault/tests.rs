use super::*;

#[test]
fn a_sealed_value_opens_only_for_its_own_record() {
    let vault = Vault::in_memory(random_key().expect("key"));
    let sealed = vault.seal(b"hunter2", b"arn:a\0v1").expect("seal");
    assert_eq!(
        vault.unseal(&sealed, b"arn:a\0v1").expect("open"),
        b"hunter2"
    );
    assert!(matches!(
        vault.unseal(&sealed, b"arn:b\0v1"),
        Err(VaultError::Corrupt)
    ));
    assert!(matches!(
        vault.unseal(&sealed, b"arn:a\0v2"),
        Err(VaultError::Corrupt)
    ));
    let text = serde_json::to_string(&sealed).expect("json");
    assert!(!text.contains("hunter2"));
    assert!(!sealed.opaque().contains("hunter2"));
}

#[test]
fn two_seals_of_one_value_differ_and_another_master_key_cannot_open_them() {
    let vault = Vault::in_memory(random_key().expect("key"));
    let a = vault.seal(b"same", b"r").expect("seal");
    let b = vault.seal(b"same", b"r").expect("seal");
    assert_ne!(a.ciphertext, b.ciphertext);
    assert_ne!(a.wrapped_key, b.wrapped_key);
    let other = Vault::in_memory(random_key().expect("key"));
    assert!(matches!(
        other.unseal(&a, b"r"),
        Err(VaultError::UnknownKey { .. })
    ));
}

#[test]
fn a_tampered_envelope_does_not_open() {
    let vault = Vault::in_memory(random_key().expect("key"));
    let mut sealed = vault.seal(b"value", b"r").expect("seal");
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bytes = b64.decode(&sealed.ciphertext).expect("b64");
    bytes[0] ^= 1;
    sealed.ciphertext = b64.encode(bytes);
    assert!(matches!(
        vault.unseal(&sealed, b"r"),
        Err(VaultError::Corrupt)
    ));
}

#[test]
fn the_master_key_file_is_private_and_reused_on_the_next_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Vault::open(Some(dir.path())).expect("open");
    let file = dir.path().join(VAULT_KEY_FILE);
    let meta = std::fs::metadata(&file).expect("stat");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    let sealed = vault.seal(b"kept", b"r").expect("seal");
    let again = Vault::open(Some(dir.path())).expect("reopen");
    assert_eq!(again.unseal(&sealed, b"r").expect("open"), b"kept");
}

#[test]
fn an_operator_key_file_is_used_instead_of_the_data_dir_and_must_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("operator.key");
    let missing = Vault::open_from(Some(file.clone()), Some(dir.path())).expect_err("missing");
    assert!(missing.to_string().contains("does not exist"));
    let key = random_key().expect("key");
    std::fs::write(&file, key).expect("write");
    let vault = Vault::open_from(Some(file), Some(dir.path())).expect("open");
    assert_eq!(
        vault.current_key_id(),
        Vault::in_memory(key).current_key_id()
    );
    assert!(
        !dir.path().join(VAULT_KEY_FILE).exists(),
        "no key of its own in the data dir"
    );
}

#[test]
fn a_key_file_of_the_wrong_size_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(VAULT_KEY_FILE), b"short").expect("write");
    let err = Vault::open(Some(dir.path())).expect_err("refused");
    assert!(err.to_string().contains("not a Berth vault key file"));
}

#[test]
fn rotation_rewraps_data_keys_under_the_new_key_and_then_forgets_the_old_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Vault::open(Some(dir.path())).expect("open");
    let old_id = vault.current_key_id();
    let sealed = vault.seal(b"rotated", b"r").expect("seal");

    vault.rotate(random_key().expect("key")).expect("rotate");
    assert_ne!(vault.current_key_id(), old_id);
    // Until re-wrapped, the old envelope still opens: no downtime.
    assert_eq!(vault.unseal(&sealed, b"r").expect("open"), b"rotated");
    let file = dir.path().join(VAULT_KEY_FILE);
    assert_eq!(std::fs::metadata(&file).expect("stat").len(), 64);

    let rewrapped = vault.rewrap(&sealed, b"r").expect("rewrap").expect("moved");
    assert_eq!(rewrapped.key_id, vault.current_key_id());
    assert_eq!(
        rewrapped.ciphertext, sealed.ciphertext,
        "the value is not re-encrypted"
    );
    assert_eq!(vault.rewrap(&rewrapped, b"r").expect("rewrap"), None);

    vault.retire().expect("retire");
    assert_eq!(std::fs::metadata(&file).expect("stat").len(), 32);
    let restarted = Vault::open(Some(dir.path())).expect("reopen");
    assert_eq!(
        restarted.unseal(&rewrapped, b"r").expect("open"),
        b"rotated"
    );
    assert!(matches!(
        restarted.unseal(&sealed, b"r"),
        Err(VaultError::UnknownKey { .. })
    ));
}

#[test]
fn a_rotation_whose_key_file_cannot_be_written_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Vault::open(Some(dir.path())).expect("open");
    let old_id = vault.current_key_id();
    let sealed = vault.seal(b"kept", b"k").expect("seal");
    // The key file's place taken by a directory: the write fails.
    let file = dir.path().join(VAULT_KEY_FILE);
    std::fs::remove_file(&file).expect("remove");
    std::fs::create_dir(&file).expect("block the file");

    vault
        .rotate(random_key().expect("key"))
        .expect_err("cannot persist");
    assert_eq!(vault.current_key_id(), old_id, "no key only in memory");
    assert_eq!(vault.unseal(&sealed, b"k").expect("open"), b"kept");
}
