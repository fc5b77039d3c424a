use super::*;

fn int(name: &str, value: i32) -> Resource {
    Resource {
        name: Some(name.into()),
        type_: Some("INTEGER".into()),
        double_value: None,
        long_value: None,
        integer_value: Some(value),
        string_set_value: None,
    }
}

fn set(name: &str, values: &[&str]) -> Resource {
    Resource {
        name: Some(name.into()),
        type_: Some("STRINGSET".into()),
        double_value: None,
        long_value: None,
        integer_value: None,
        string_set_value: Some(values.iter().map(|v| v.to_string()).collect()),
    }
}

fn value_of(resources: &[Resource], name: &str) -> Resource {
    resources
        .iter()
        .find(|r| r.name.as_deref() == Some(name))
        .cloned()
        .expect("resource present")
}

fn attr(name: &str, value: Option<&str>) -> Attribute {
    stored_attribute(name, value)
}

#[test]
fn registered_resources_default_to_zero_cpu_memory_and_ecs_reserved_ports() {
    let resources = registered_resources(&[], &[]).expect("valid");
    let names: Vec<_> = resources.iter().filter_map(|r| r.name.clone()).collect();
    assert_eq!(names, ["CPU", "MEMORY", "PORTS", "PORTS_UDP"]);
    assert_eq!(value_of(&resources, "CPU").integer_value, Some(0));
    assert_eq!(
        value_of(&resources, "PORTS").string_set_value,
        Some(DEFAULT_RESERVED_PORTS.map(String::from).to_vec())
    );
    assert_eq!(
        value_of(&resources, "PORTS_UDP").string_set_value,
        Some(vec![])
    );
}

#[test]
fn registered_resources_take_the_given_values_and_gpus_from_devices() {
    let gpu = PlatformDevice {
        id: "GPU-1".into(),
        type_: "GPU".into(),
    };
    let resources = registered_resources(
        &[
            int("CPU", 2048),
            int("MEMORY", 4096),
            set("PORTS", &["22", "80", "80"]),
        ],
        &[gpu],
    )
    .expect("valid");
    assert_eq!(value_of(&resources, "CPU").integer_value, Some(2048));
    assert_eq!(value_of(&resources, "MEMORY").integer_value, Some(4096));
    assert_eq!(
        value_of(&resources, "PORTS").string_set_value,
        Some(vec!["22".to_string(), "80".to_string()])
    );
    assert_eq!(
        value_of(&resources, "GPU").string_set_value,
        Some(vec!["GPU-1".to_string()])
    );
}

#[test]
fn unknown_mistyped_negative_or_repeated_resources_are_rejected() {
    assert!(registered_resources(&[int("DISK", 1)], &[]).is_err());
    assert!(registered_resources(&[set("CPU", &["1"])], &[]).is_err());
    assert!(registered_resources(&[int("MEMORY", -1)], &[]).is_err());
    assert!(registered_resources(&[int("CPU", 1), int("CPU", 2)], &[]).is_err());
    assert!(registered_resources(&[set("PORTS", &["-5"])], &[]).is_err());
    assert!(registered_resources(&[set("PORTS", &["70000"])], &[]).is_err());
    let mut untyped = int("CPU", 1);
    untyped.type_ = None;
    untyped.integer_value = None;
    assert!(registered_resources(&[untyped], &[]).is_err());
    let tpu = PlatformDevice {
        id: "t".into(),
        type_: "TPU".into(),
    };
    assert!(registered_resources(&[], &[tpu]).is_err());
}

#[test]
fn attribute_names_and_values_follow_ecs_character_rules() {
    assert!(validate_attribute(&attr("ecs.os-type", Some("linux"))).is_ok());
    assert!(validate_attribute(&attr("stack", None)).is_ok());
    assert!(validate_attribute(&attr("a/b\\c.d-e_f", Some("x:y@z w"))).is_ok());
    assert!(validate_attribute(&attr("has space", None)).is_err());
    assert!(validate_attribute(&attr("at@sign", None)).is_err());
    assert!(validate_attribute(&attr("", Some("x"))).is_err());
    assert!(validate_attribute(&attr(&"n".repeat(129), None)).is_err());
    assert!(validate_attribute(&attr("bad*name", None)).is_err());
    assert!(validate_attribute(&attr("n", Some(""))).is_err());
    assert!(validate_attribute(&attr("n", Some(" padded"))).is_err());
    assert!(validate_attribute(&attr("n", Some("bad|char"))).is_err());
    assert!(validate_attribute(&attr("n", Some(&"v".repeat(129)))).is_err());
}

#[test]
fn putting_an_attribute_replaces_its_value_and_removing_drops_it() {
    let mut attributes = vec![attr("stack", Some("prod"))];
    put_attribute(&mut attributes, "stack", Some("test"));
    put_attribute(&mut attributes, "zone", None);
    assert_eq!(
        attributes,
        vec![attr("stack", Some("test")), attr("zone", None)]
    );
    assert!(remove_attribute(&mut attributes, "stack"));
    assert!(!remove_attribute(&mut attributes, "stack"));
    assert_eq!(attributes, vec![attr("zone", None)]);
}

#[test]
fn only_attributes_outside_the_agent_namespaces_count_as_custom() {
    let attributes = [
        attr("ecs.os-type", Some("linux")),
        attr("com.amazonaws.ecs.capability.privileged-container", None),
        attr("stack", Some("prod")),
    ];
    assert_eq!(custom_attribute_count(&attributes), 1);
}

#[test]
fn reregistration_replaces_agent_attributes_but_keeps_custom_ones() {
    let existing = [
        attr("ecs.capability.old", None),
        attr("stack", Some("prod")),
        attr("team", Some("a")),
    ];
    let reported = [attr("ecs.os-type", Some("linux")), attr("team", Some("b"))];
    assert_eq!(
        reregistered_attributes(&existing, &reported),
        vec![
            attr("ecs.os-type", Some("linux")),
            attr("team", Some("b")),
            attr("stack", Some("prod")),
        ]
    );
}

fn registration(cpu: i32, attributes: &[Attribute]) -> Registration {
    Registration {
        resources: registered_resources(&[int("CPU", cpu)], &[]).expect("valid"),
        attributes: reported_attributes(attributes).expect("valid"),
        tags: vec![],
        version_info: None,
        ec2_instance_id: None,
    }
}

#[test]
fn a_new_registration_is_active_and_stores_nothing_derived_from_tasks() {
    let instance = registration(1024, &[attr("ecs.os-type", Some("linux"))])
        .new_instance("arn:x/abc", "abc", 5.0)
        .expect("valid");
    assert_eq!(instance.status, Some(ContainerInstanceStatus::Active));
    assert_eq!(instance.agent_connected, Some(true));
    assert_eq!(
        instance.ec2_instance_id.as_deref(),
        Some("mi-abc00000000000000")
    );
    assert_eq!(instance.registered_at, Some(5.0));
    assert_eq!(instance.remaining_resources, None);
    assert_eq!(instance.running_tasks_count, None);
}

#[test]
fn reregistration_keeps_status_and_registration_time_and_merges_tags() {
    let mut first = registration(1024, &[])
        .new_instance("arn", "abc", 5.0)
        .expect("ok");
    first.status = Some(ContainerInstanceStatus::Draining);
    first.agent_connected = Some(false);
    first.tags = Some(vec![Tag {
        key: Some("a".into()),
        value: Some("1".into()),
    }]);
    let mut again = registration(2048, &[]);
    again.tags = vec![Tag {
        key: Some("b".into()),
        value: Some("2".into()),
    }];
    let updated = again.reregister(first).expect("ok");
    assert_eq!(updated.status, Some(ContainerInstanceStatus::Draining));
    assert_eq!(updated.agent_connected, Some(true));
    assert_eq!(updated.registered_at, Some(5.0));
    assert_eq!(updated.tags.map(|t| t.len()), Some(2));
    let cpu = value_of(
        updated.registered_resources.as_deref().unwrap_or_default(),
        "CPU",
    );
    assert_eq!(cpu.integer_value, Some(2048));
}

#[test]
fn registrations_with_too_many_custom_attributes_or_foreign_targets_are_refused() {
    let many: Vec<Attribute> = (0..=MAX_CUSTOM_ATTRIBUTES)
        .map(|i| attr(&format!("custom{i}"), None))
        .collect();
    assert!(registration(1, &many)
        .new_instance("arn", "abc", 0.0)
        .is_err());
    let mut foreign = attr("x", None);
    foreign.target_type = Some("service".into());
    assert!(reported_attributes(&[foreign]).is_err());
    assert_eq!(
        reported_attributes(&[attr("x", Some("1")), attr("x", Some("2"))]),
        Ok(vec![attr("x", Some("2"))])
    );
}

#[test]
fn managed_instance_ids_are_stable_and_shaped_like_ssm_ids() {
    let id = "0123456789abcdef0123456789abcdef";
    assert_eq!(managed_instance_id_for(id), "mi-0123456789abcdef0");
    assert_eq!(managed_instance_id_for(id), managed_instance_id_for(id));
    assert_eq!(managed_instance_id_for("ab").len(), 20);
}

#[test]
fn identity_documents_yield_their_instance_id() {
    assert_eq!(
        instance_id_of_identity_document(r#"{"instanceId":"i-0abc","region":"x"}"#),
        Ok(Some("i-0abc".to_string()))
    );
    assert_eq!(instance_id_of_identity_document("{}"), Ok(None));
    assert!(instance_id_of_identity_document("not json").is_err());
    assert!(instance_id_of_identity_document("[1]").is_err());
}

#[test]
fn instance_ids_are_letters_digits_and_hyphens() {
    assert!(is_valid_instance_id("0123456789abcdef0123456789abcdef"));
    assert!(is_valid_instance_id("6d2a9c6e-1b7f-4f0e-9a34-1c2d3e4f5a6b"));
    assert!(!is_valid_instance_id(""));
    assert!(!is_valid_instance_id("a/b"));
    assert!(!is_valid_instance_id(&"a".repeat(65)));
}

#[test]
fn the_stored_form_drops_version_remaining_resources_and_task_counts() {
    let shown = ContainerInstance {
        ec2_instance_id: Some("mi-1".into()),
        version: Some(3),
        remaining_resources: Some(vec![integer_resource("CPU", 1)]),
        running_tasks_count: Some(2),
        pending_tasks_count: Some(1),
        ..ContainerInstance::default()
    };
    let stored = shown.without_derived();
    assert_eq!(
        stored,
        ContainerInstance {
            ec2_instance_id: Some("mi-1".into()),
            ..ContainerInstance::default()
        }
    );
}

#[test]
fn container_instance_serializes_with_ecs_field_names() {
    let instance = ContainerInstance {
        ec2_instance_id: Some("mi-1".into()),
        version: Some(3),
        agent_connected: Some(true),
        registered_resources: Some(vec![integer_resource("CPU", 1)]),
        ..ContainerInstance::default()
    };
    let json = serde_json::to_value(&instance).expect("serializes");
    assert_eq!(json["ec2InstanceId"], "mi-1");
    assert_eq!(json["version"], 3);
    assert_eq!(json["agentConnected"], true);
    assert_eq!(json["registeredResources"][0]["integerValue"], 1);
    assert_eq!(json["registeredResources"][0]["type"], "INTEGER");
    assert!(json.get("tags").is_none());
}
