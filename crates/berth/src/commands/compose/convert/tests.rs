//! The mapping's unit tests: the Compose specification's kind of example, hashing, errors.

use super::super::fields::{mebibytes, seconds};
use super::*;
use crate::commands::compose::file::parse;
use crate::commands::compose::file::Scalar;

const EXAMPLE: &str = r#"
services:
  frontend:
    image: example/webapp
    command: sh -c 'echo "hi there" && httpd -f'
    ports: ["8080:80", "443", {target: 9000, published: "9001", protocol: udp, host_ip: 127.0.0.1}]
    environment: [MODE=prod, FROM_SHELL, UNSET_ONE]
    env_file: [web.env, {path: missing.env, required: false}]
    depends_on:
      backend: {condition: service_healthy}
    volumes: ["./static:/srv/static:ro", "/cache"]
    labels: {tier: front}
    logging: {driver: json-file, options: {max-size: 10m}}
    restart: on-failure:3
  backend:
    image: example/database
    deploy:
      replicas: 2
      resources:
        limits: {cpus: "0.5", memory: 512M}
        reservations: {memory: 128M}
    healthcheck:
      test: pg_isready
      interval: 1m30s
      timeout: 1s
      retries: 5
      start_period: 40s
    volumes: [{type: volume, source: db-data, target: /var/lib/data}]
    restart: always
volumes:
  db-data: {}
"#;

fn plan_of(text: &str) -> anyhow::Result<Plan> {
    let (file, unsupported) = parse(text, "compose.yaml")?;
    let env = |name: &str| (name == "FROM_SHELL").then(|| "shell".to_string());
    let read = |path: &Path| {
        path.ends_with("web.env")
            .then(|| "# comment\nMODE=dev\nexport TOKEN=\"quoted\"\n\n".to_string())
    };
    let source = Source {
        project: "shop".into(),
        dir: PathBuf::from("/srv/app"),
        env: &env,
        read: &read,
    };
    convert(&file, unsupported, &source)
}

#[test]
fn the_compose_spec_example_maps_to_families_and_services_in_dependency_order() {
    let plan = plan_of(EXAMPLE).expect("converts");
    let names: Vec<&str> = plan
        .services
        .iter()
        .map(|s| s.service_name.as_str())
        .collect();
    assert_eq!(names, vec!["shop-backend", "shop-frontend"]);
    let back = &plan.services[0];
    let front = &plan.services[1];
    assert_eq!(
        front.depends_on,
        vec![("backend".to_string(), "service_healthy".to_string())]
    );

    let c = &front.task_definition["containerDefinitions"][0];
    assert_eq!(front.task_definition["family"], "shop-frontend");
    assert_eq!(c["name"], "frontend");
    assert_eq!(
        c["command"],
        json!(["sh", "-c", "echo \"hi there\" && httpd -f"])
    );
    assert_eq!(
        c["portMappings"],
        json!([{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"},
                   {"containerPort": 443, "protocol": "tcp"},
                   {"containerPort": 9000, "hostPort": 9001, "protocol": "udp"}])
    );
    assert_eq!(
        c["environment"],
        json!([{"name": "FROM_SHELL", "value": "shell"}, {"name": "MODE", "value": "prod"},
                   {"name": "TOKEN", "value": "quoted"}])
    );
    assert_eq!(
        front.task_definition["volumes"],
        json!([{"name": "bind-0", "host": {"sourcePath": "/srv/app/static"}}, {"name": "anonymous-1"}])
    );
    assert_eq!(
        c["mountPoints"],
        json!([{"sourceVolume": "bind-0", "containerPath": "/srv/static", "readOnly": true},
                   {"sourceVolume": "anonymous-1", "containerPath": "/cache"}])
    );
    assert_eq!(c["dockerLabels"]["tier"], "front");
    assert_eq!(c["dockerLabels"][PROJECT_LABEL], "shop");
    assert_eq!(c["dockerLabels"][HASH_LABEL], front.config_hash.as_str());
    assert_eq!(
        c["logConfiguration"],
        json!({"logDriver": "json-file", "options": {"max-size": "10m"}})
    );
    assert_eq!(
        c["restartPolicy"],
        json!({"enabled": true, "ignoredExitCodes": [0]})
    );
    assert_eq!(c["memoryReservation"], 128);
    assert_eq!(
        front.service["deploymentConfiguration"]["minimumHealthyPercent"], 0,
        "fixed host ports"
    );
    assert_eq!(front.service["desiredCount"], 1);

    let c = &back.task_definition["containerDefinitions"][0];
    assert_eq!(c["cpu"], 512);
    assert_eq!(c["memory"], 512);
    assert_eq!(c["memoryReservation"], 128);
    assert_eq!(
        c["healthCheck"],
        json!({"command": ["CMD-SHELL", "pg_isready"], "interval": 90, "timeout": 2, "retries": 5, "startPeriod": 40})
    );
    assert_eq!(c["restartPolicy"], json!({"enabled": true}));
    assert_eq!(
        back.task_definition["volumes"],
        json!([{"name": "shop_db-data", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driver": "local",
                    "labels": {PROJECT_LABEL: "shop", "com.docker.compose.volume": "db-data"}}}])
    );
    assert_eq!(back.service["desiredCount"], 2);
    assert_eq!(
        back.service["deploymentConfiguration"]["maximumPercent"],
        200
    );
    assert_eq!(
        back.service["tags"][0],
        json!({"key": PROJECT_LABEL, "value": "shop"})
    );

    assert_eq!(
            plan.unsupported,
            vec![
                "services.backend.healthcheck.timeout: 1s is outside ECS's 2 to 60s; 2s is used",
                "services.frontend.ports[2]: host IP 127.0.0.1 (the port is published on all addresses)",
                "services.frontend.restart: the limit of 3 restarts (ECS restarts without a limit)",
            ]
        );
}

#[test]
fn the_same_file_hashes_the_same_and_a_change_changes_only_its_service() {
    let one = plan_of(EXAMPLE).expect("converts");
    let two = plan_of(EXAMPLE).expect("converts");
    let changed = plan_of(&EXAMPLE.replace("MODE=prod", "MODE=staging")).expect("converts");
    assert_eq!(one.services[0].config_hash, two.services[0].config_hash);
    assert_eq!(one.services[1].config_hash, two.services[1].config_hash);
    assert_eq!(one.services[0].config_hash, changed.services[0].config_hash);
    assert_ne!(one.services[1].config_hash, changed.services[1].config_hash);
}

#[test]
fn bad_values_are_errors_that_name_where_they_are() {
    let cases = [
        ("services:\n  a: {command: x}\n", "services.a has no image"),
        (
            "services:\n  a: {image: x, ports: ['80-90:80-90']}\n",
            "services.a.ports[0]: port ranges",
        ),
        (
            "services:\n  a: {image: x, ports: ['http']}\n",
            "services.a.ports[0]: 'http' is not a port",
        ),
        (
            "services:\n  a: {image: x, depends_on: [b]}\n",
            "no service 'b'",
        ),
        (
            "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n",
            "cycle among the services a, b",
        ),
        (
            "services:\n  a: {image: x, volumes: ['data:/d']}\n",
            "volume 'data' is not declared",
        ),
        (
            "services:\n  a: {image: x, restart: sometimes}\n",
            "services.a.restart: 'sometimes'",
        ),
        (
            "services:\n  a: {image: x, deploy: {resources: {limits: {memory: lots}}}}\n",
            "limits.memory: 'lots' is not a size",
        ),
        (
            "services:\n  a: {image: x, healthcheck: {test: [BOGUS, x]}}\n",
            "services.a.healthcheck.test",
        ),
        (
            "services:\n  a: {image: x, env_file: nope.env}\n",
            "services.a.env_file: /srv/app/nope.env does not exist",
        ),
    ];
    for (text, expected) in cases {
        let error = format!("{:#}", plan_of(text).expect_err(text));
        assert!(error.contains(expected), "{text}: {error}");
    }
}

#[test]
fn sizes_durations_and_names_read_as_compose_writes_them() {
    let size = |s: &str| mebibytes(&Scalar::String(s.into()), "x").expect(s);
    assert_eq!(size("512M"), 512);
    assert_eq!(size("1g"), 1024);
    assert_eq!(size("1.5GB"), 1536);
    assert_eq!(size("1024k"), 1);
    assert_eq!(mebibytes(&Scalar::Int(1_048_577), "x").expect("bytes"), 2);
    assert_eq!(
        seconds(&Scalar::String("1m30s".into()), "x").expect("duration"),
        90
    );
    assert_eq!(
        seconds(&Scalar::String("500ms".into()), "x").expect("duration"),
        1
    );
    assert_eq!(normalise_project("My App.v2"), "myappv2");
    assert_eq!(ecs_name("shop", "web.api"), "shop-web-api");
}

#[test]
fn the_json_plan_is_the_ecs_inputs_in_dependency_order() {
    let plan = plan_of(EXAMPLE).expect("converts");
    let json = plan.to_ecs_json("prod");
    assert_eq!(json["project"], "shop");
    let families: Vec<&Value> = json["taskDefinitions"]
        .as_array()
        .expect("an array")
        .iter()
        .map(|t| &t["family"])
        .collect();
    assert_eq!(families, vec!["shop-backend", "shop-frontend"]);
    assert_eq!(json["taskDefinitions"][1], plan.services[1].task_definition);
    let services = json["services"].as_array().expect("an array");
    assert_eq!(services.len(), 2);
    assert_eq!(services[0]["serviceName"], "shop-backend");
    assert_eq!(services[0]["cluster"], "prod");
    assert_eq!(services[0]["desiredCount"], 2);
    assert_eq!(json["unsupported"], json!(plan.unsupported));
    assert_eq!(
        json["services"][1],
        plan.to_json("prod")["services"][1]["createService"],
        "the same CreateService input as the text plan"
    );
}
