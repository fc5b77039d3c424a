//! The admission check: each root-granting field refused by default and admitted by its
//! allowance, with ECS field paths; path normalisation, capability names, user forms,
//! security options and cluster tags.

use super::*;
use serde_json::{json, Value};

/// A task definition from JSON: `extra` task members and one container with `container`
/// members beside a name and an image.
fn td(extra: Value, container: Value) -> TaskDefinition {
    let mut c = json!({"name": "app", "image": "busybox"});
    c.as_object_mut()
        .expect("object")
        .extend(container.as_object().cloned().unwrap_or_default());
    let mut t = json!({"family": "f", "containerDefinitions": [c]});
    t.as_object_mut()
        .expect("object")
        .extend(extra.as_object().cloned().unwrap_or_default());
    serde_json::from_value(t).expect("task definition parses")
}

fn fields(refusals: &[Refusal]) -> Vec<String> {
    refusals.iter().map(|r| r.field.clone()).collect()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: Some(key.into()),
        value: Some(value.into()),
    }
}

#[test]
fn a_plain_definition_is_admitted_by_default() {
    let plain = td(
        json!({"networkMode": "bridge", "pidMode": "task", "ipcMode": "none",
               "volumes": [{"name": "scratch", "host": {}},
                           {"name": "tmp", "dockerVolumeConfiguration": {"driver": "local",
                                "driverOpts": {"type": "tmpfs", "device": "tmpfs"}}}]}),
        json!({"privileged": false, "user": "root",
               "dockerSecurityOptions": ["no-new-privileges", "apparmor:docker-default",
                                         "label:level:s0:c100,c200", "seccomp=builtin"],
               "linuxParameters": {"capabilities": {"add": ["NET_BIND_SERVICE", "chown",
                                                            "CAP_KILL"], "drop": ["ALL"]},
                                   "devices": []}}),
    );
    assert_eq!(check(&plain, &Allowances::default()), Vec::new());
}

#[test]
fn every_root_granting_field_is_refused_by_default_with_its_ecs_path() {
    let risky = td(
        json!({"networkMode": "host", "pidMode": "host", "ipcMode": "host",
               "volumes": [{"name": "ok", "host": {}},
                           {"name": "etc", "host": {"sourcePath": "/etc"}},
                           {"name": "bound", "dockerVolumeConfiguration": {
                                "driverOpts": {"type": "none", "o": "bind", "device": "/root"}}}]}),
        json!({"privileged": true,
               "dockerSecurityOptions": ["no-new-privileges", "seccomp=unconfined"],
               "linuxParameters": {"devices": [{"hostPath": "/dev/sda"}],
                                   "capabilities": {"add": ["CHOWN", "SYS_ADMIN"]}}}),
    );
    let refusals = check(&risky, &Allowances::default());
    assert_eq!(
        fields(&refusals),
        vec![
            "networkMode",
            "pidMode",
            "ipcMode",
            "volumes[1].host.sourcePath",
            "volumes[2].dockerVolumeConfiguration.driverOpts",
            "containerDefinitions[0].privileged",
            "containerDefinitions[0].dockerSecurityOptions[1]",
            "containerDefinitions[0].linuxParameters.devices[0]",
            "containerDefinitions[0].linuxParameters.capabilities.add[1]",
        ]
    );
    let all = Allowances {
        privileged: true,
        host_network: true,
        host_pid: true,
        host_ipc: true,
        bind_mount_prefixes: vec!["/etc".into()],
        docker_volume_binds: true,
        devices: true,
        capabilities: vec!["SYS_ADMIN".into()],
        unconfined: true,
        forbid_root_user: false,
    };
    assert_eq!(check(&risky, &all), Vec::new());
}

#[test]
fn each_allowance_admits_only_its_own_field() {
    let cases: Vec<(Value, Value, &str, Allowances)> = vec![
        (
            json!({}),
            json!({"privileged": true}),
            "containerDefinitions[0].privileged",
            Allowances {
                privileged: true,
                ..Allowances::default()
            },
        ),
        (
            json!({"networkMode": "host"}),
            json!({}),
            "networkMode",
            Allowances {
                host_network: true,
                ..Allowances::default()
            },
        ),
        (
            json!({"pidMode": "host"}),
            json!({}),
            "pidMode",
            Allowances {
                host_pid: true,
                ..Allowances::default()
            },
        ),
        (
            json!({"ipcMode": "host"}),
            json!({}),
            "ipcMode",
            Allowances {
                host_ipc: true,
                ..Allowances::default()
            },
        ),
        (
            json!({"volumes": [{"name": "d", "dockerVolumeConfiguration": {
                "driverOpts": {"o": "rbind,ro", "device": "/var/lib"}}}]}),
            json!({}),
            "volumes[0].dockerVolumeConfiguration.driverOpts",
            Allowances {
                docker_volume_binds: true,
                ..Allowances::default()
            },
        ),
        (
            json!({}),
            json!({"linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}}),
            "containerDefinitions[0].linuxParameters.devices[0]",
            Allowances {
                devices: true,
                ..Allowances::default()
            },
        ),
        (
            json!({}),
            json!({"dockerSecurityOptions": ["apparmor=unconfined"]}),
            "containerDefinitions[0].dockerSecurityOptions[0]",
            Allowances {
                unconfined: true,
                ..Allowances::default()
            },
        ),
    ];
    for (task, container, field, allowance) in cases {
        let definition = td(task, container);
        let refused = check(&definition, &Allowances::default());
        assert_eq!(fields(&refused), vec![field.to_string()], "{field}");
        assert_eq!(check(&definition, &allowance), Vec::new(), "{field}");
        // Every other allowance leaves it refused.
        let others = Allowances {
            privileged: !allowance.privileged,
            host_network: !allowance.host_network,
            host_pid: !allowance.host_pid,
            host_ipc: !allowance.host_ipc,
            bind_mount_prefixes: vec!["/".into()],
            docker_volume_binds: !allowance.docker_volume_binds,
            devices: !allowance.devices,
            capabilities: vec!["ALL".into()],
            unconfined: !allowance.unconfined,
            forbid_root_user: false,
        };
        assert_eq!(
            fields(&check(&definition, &others)),
            vec![field.to_string()]
        );
    }
}

#[test]
fn the_refusal_names_the_field_why_the_tag_and_the_flag() {
    let definition = td(json!({}), json!({"privileged": true}));
    let refusals = check(&definition, &Allowances::default());
    assert_eq!(
        refusals[0].to_string(),
        "containerDefinitions[0].privileged is refused: privileged containers are root on the \
         host. Allow it on the cluster with the tag berth:allow-privileged=true \
         (ecs:TagResource), and on its agents with --allow-privileged."
    );
    assert_eq!(
        refusals[0].agent_message(),
        "containerDefinitions[0].privileged is refused by this agent: privileged containers are \
         root on the host. Start the agent with --allow-privileged to allow it."
    );
    let mount = td(
        json!({"volumes": [{"name": "v", "host": {"sourcePath": "/srv/../etc/"}}]}),
        json!({}),
    );
    let message = check(&mount, &Allowances::default())[0].to_string();
    assert!(message.contains("host path /etc,"), "{message}");
    assert!(
        message
            .contains("adding /etc (or a directory above it) to the tag berth:allow-bind-mounts"),
        "{message}"
    );
    assert!(message.contains("--allow-bind-mount /etc."), "{message}");
    let cap = td(
        json!({}),
        json!({"linuxParameters": {"capabilities": {"add": ["cap_net_admin"]}}}),
    );
    let refusal = &check(&cap, &Allowances::default())[0];
    assert!(refusal
        .to_string()
        .contains("adding NET_ADMIN to the tag berth:allow-capabilities"));
    assert!(refusal
        .agent_message()
        .contains("Start the agent with --allow-capability NET_ADMIN"));
}

#[test]
fn bind_mounts_compare_normalised_paths_against_normalised_prefixes() {
    let allow = |prefixes: &[&str]| Allowances {
        bind_mount_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        ..Allowances::default()
    };
    let srv = allow(&["/srv"]);
    assert!(srv.allows_bind_mount("/srv"));
    assert!(srv.allows_bind_mount("/srv/app/data"));
    assert!(srv.allows_bind_mount("//srv/./app/"));
    assert!(srv.allows_bind_mount("/srv/a/../b"));
    assert!(!srv.allows_bind_mount("/srv/../etc"), "escapes with ..");
    assert!(!srv.allows_bind_mount("/srv/app/../../etc/shadow"));
    assert!(
        !srv.allows_bind_mount("/srvx"),
        "a sibling with the same start"
    );
    assert!(!srv.allows_bind_mount("/"));
    assert!(
        !srv.allows_bind_mount("srv/app"),
        "relative paths are never admitted"
    );
    assert!(!srv.allows_bind_mount("/../.."));
    assert!(
        allow(&["/srv/"]).allows_bind_mount("/srv/x"),
        "trailing slash"
    );
    assert!(allow(&["/data/../srv"]).allows_bind_mount("/srv/x"));
    assert!(!allow(&["/data/../srv"]).allows_bind_mount("/data/x"));
    assert!(
        allow(&["/"]).allows_bind_mount("/etc"),
        "/ allows everything"
    );
    assert!(
        !allow(&["srv"]).allows_bind_mount("/srv/x"),
        "relative prefixes are ignored"
    );
    assert!(
        !Allowances::default().allows_bind_mount("/tmp"),
        "empty by default"
    );
    assert_eq!(normalize_path("/a//b/./c/../d/"), Some("/a/b/d".into()));
    assert_eq!(normalize_path("/.."), Some("/".into()));
    assert_eq!(normalize_path("a/b"), None);

    let mounts = td(
        json!({"volumes": [{"name": "a", "host": {"sourcePath": "/srv/app"}},
                           {"name": "b", "host": {"sourcePath": "/srv/../etc"}},
                           {"name": "c", "host": {"sourcePath": ""}}]}),
        json!({}),
    );
    assert_eq!(
        fields(&check(&mounts, &srv)),
        vec!["volumes[1].host.sourcePath"]
    );
}

#[test]
fn capability_names_are_read_in_any_case_with_or_without_cap_prefix() {
    assert_eq!(capability_name(" cap_sys_admin "), "SYS_ADMIN");
    assert_eq!(capability_name("Net_Admin"), "NET_ADMIN");
    let none = Allowances::default();
    for default in ["chown", "CAP_NET_RAW", "Kill", "audit_write", "SETFCAP"] {
        assert!(none.allows_capability(default), "{default}");
    }
    for beyond in [
        "ALL",
        "all",
        "SYS_ADMIN",
        "net_admin",
        "CAP_SYS_PTRACE",
        "SYS_MODULE",
    ] {
        assert!(!none.allows_capability(beyond), "{beyond}");
    }
    let named = Allowances {
        capabilities: vec!["net_admin".into(), "CAP_SYS_TIME".into()],
        ..Allowances::default()
    };
    assert!(named.allows_capability("NET_ADMIN"));
    assert!(named.allows_capability("cap_sys_time"));
    assert!(!named.allows_capability("SYS_ADMIN"));
    assert!(
        !named.allows_capability("ALL"),
        "naming some does not allow ALL"
    );
    let all = Allowances {
        capabilities: vec!["ALL".into()],
        ..Allowances::default()
    };
    assert!(all.allows_capability("SYS_ADMIN") && all.allows_capability("all"));
}

#[test]
fn root_users_are_refused_only_when_the_allowances_forbid_root() {
    for root in [
        "root",
        "0",
        "0:0",
        "0:1000",
        "root:root",
        "root:wheel",
        "000",
        " 0",
    ] {
        assert!(is_root_user(root), "{root}");
    }
    for other in [
        "nobody", "1000", "1000:0", "app:root", "rooted", "10", "", ":0",
    ] {
        assert!(!is_root_user(other), "{other}");
    }
    let as_root = td(json!({}), json!({"user": "0:0"}));
    assert_eq!(check(&as_root, &Allowances::default()), Vec::new());
    let forbid = Allowances {
        forbid_root_user: true,
        ..Allowances::default()
    };
    let refusals = check(&as_root, &forbid);
    assert_eq!(fields(&refusals), vec!["containerDefinitions[0].user"]);
    assert!(refusals[0]
        .to_string()
        .contains("remove the tag berth:forbid-root-user"));
    assert!(refusals[0]
        .agent_message()
        .contains("start the agent without --forbid-root-user"));
    let as_app = td(json!({}), json!({"user": "1000:0"}));
    assert_eq!(check(&as_app, &forbid), Vec::new());
}

#[test]
fn security_options_that_lift_confinement_are_recognised_in_both_forms() {
    for lifts in [
        "seccomp=unconfined",
        "seccomp:unconfined",
        "apparmor=unconfined",
        "apparmor:unconfined",
        "label=disable",
        "label:disable",
        "label:type:spc_t",
        "systempaths=unconfined",
        "Seccomp = Unconfined",
        r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#,
    ] {
        assert!(lifts_confinement(lifts), "{lifts}");
    }
    for keeps in [
        "no-new-privileges",
        "no-new-privileges:true",
        "apparmor:docker-default",
        "label:user:USER",
        "label:level:s0:c100,c200",
        "seccomp=builtin",
        "credentialspec:file://spec.json",
    ] {
        assert!(!lifts_confinement(keeps), "{keeps}");
    }
}

#[test]
fn docker_volumes_bind_when_o_says_bind_or_type_none_names_a_device() {
    let volume = |opts: Value| {
        td(
            json!({"volumes": [{"name": "v", "dockerVolumeConfiguration": {"driverOpts": opts}}]}),
            json!({}),
        )
    };
    for binds in [
        json!({"type": "none", "o": "bind", "device": "/etc"}),
        json!({"o": "bind"}),
        json!({"o": "ro,rbind"}),
        json!({"type": "none", "device": "/var/run"}),
        json!({"Type": "NONE", "Device": "/var/run"}),
    ] {
        let refusals = check(&volume(binds.clone()), &Allowances::default());
        assert_eq!(
            fields(&refusals),
            vec!["volumes[0].dockerVolumeConfiguration.driverOpts"],
            "{binds}"
        );
    }
    for plain in [
        json!({"type": "tmpfs", "device": "tmpfs", "o": "size=100m"}),
        json!({"type": "nfs", "o": "addr=10.0.0.1", "device": ":/export"}),
        json!({"type": "none"}),
        json!({}),
    ] {
        assert_eq!(
            check(&volume(plain.clone()), &Allowances::default()),
            Vec::new(),
            "{plain}"
        );
    }
}

#[test]
fn every_container_is_checked_with_its_own_index() {
    let definition: TaskDefinition = serde_json::from_value(json!({
        "family": "f",
        "containerDefinitions": [
            {"name": "a", "image": "busybox"},
            {"name": "b", "image": "busybox", "privileged": true},
            {"name": "c", "image": "busybox",
             "linuxParameters": {"capabilities": {"add": ["KILL", "NET_ADMIN", "SYS_TIME"]}}}
        ]
    }))
    .expect("parses");
    let named = Allowances {
        capabilities: vec!["SYS_TIME".into()],
        ..Allowances::default()
    };
    assert_eq!(
        fields(&check(&definition, &named)),
        vec![
            "containerDefinitions[1].privileged",
            "containerDefinitions[2].linuxParameters.capabilities.add[1]",
        ]
    );
}

#[test]
fn cluster_tags_grant_allowances_and_other_tags_grant_nothing() {
    let allowances = Allowances::from_cluster_tags(&[
        tag("berth:allow-privileged", "true"),
        tag("berth:allow-host-network", "TRUE"),
        tag("berth:allow-host-pid", "true"),
        tag("berth:allow-host-ipc", "true"),
        tag("berth:allow-bind-mounts", "/srv /data,/opt/x"),
        tag("berth:allow-docker-volume-binds", "true"),
        tag("berth:allow-devices", "true"),
        tag("berth:allow-capabilities", "NET_ADMIN, sys_time"),
        tag("berth:allow-unconfined", "true"),
        tag("berth:forbid-root-user", "true"),
        tag("team", "a"),
    ]);
    assert_eq!(
        allowances,
        Allowances {
            privileged: true,
            host_network: true,
            host_pid: true,
            host_ipc: true,
            bind_mount_prefixes: vec!["/srv".into(), "/data".into(), "/opt/x".into()],
            docker_volume_binds: true,
            devices: true,
            capabilities: vec!["NET_ADMIN".into(), "sys_time".into()],
            unconfined: true,
            forbid_root_user: true,
        }
    );
    assert!(allowances.allows_capability("SYS_TIME"));
    let denied = Allowances::from_cluster_tags(&[
        tag("berth:allow-privileged", "false"),
        tag("berth:allow-host-network", "yes"),
        tag("Berth:Allow-Devices", "true"),
        Tag {
            key: Some("berth:allow-unconfined".into()),
            value: None,
        },
    ]);
    assert_eq!(denied, Allowances::default());
    assert_eq!(Allowances::default().to_cluster_tags(), Vec::new());
    assert_eq!(
        Allowances::from_cluster_tags(&allowances.to_cluster_tags()),
        allowances,
        "the tags an allowance is written as read back as it"
    );
}

#[test]
fn the_tag_names_and_values_follow_ecs_tag_rules() {
    // ECS tag keys and values: letters, numbers, spaces and `_ . : / = + - @`.
    let allowed = |text: &str| {
        text.chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c))
    };
    for key in [
        TAG_ALLOW_PRIVILEGED,
        TAG_ALLOW_HOST_NETWORK,
        TAG_ALLOW_HOST_PID,
        TAG_ALLOW_HOST_IPC,
        TAG_ALLOW_BIND_MOUNTS,
        TAG_ALLOW_DOCKER_VOLUME_BINDS,
        TAG_ALLOW_DEVICES,
        TAG_ALLOW_CAPABILITIES,
        TAG_ALLOW_UNCONFINED,
        TAG_FORBID_ROOT_USER,
    ] {
        assert!(allowed(key) && key.len() <= 128, "{key}");
    }
    assert!(allowed("/srv /data") && allowed("NET_ADMIN SYS_TIME"));
}
