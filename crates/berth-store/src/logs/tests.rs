use super::stream::Window;
use super::*;

const WIDE: Window = Window {
    start: None,
    end: None,
    limit: 10_000,
    max_bytes: 1_048_576,
};

fn messages(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.message.as_str()).collect()
}

#[test]
fn events_appended_are_read_forward_and_backward_in_order() {
    let store = LogStore::open(None).expect("memory store");
    store
        .create_group("app", 1, BTreeMap::new())
        .expect("group");
    let stream = store.create_stream("app", "web", 1).expect("stream");
    stream
        .append(
            &[
                (10, "a", segment::NO_POSITION),
                (20, "b", segment::NO_POSITION),
                (30, "c", segment::NO_POSITION),
            ],
            5,
        )
        .expect("append");
    assert_eq!(
        messages(&stream.read_forward(0, WIDE).expect("read")),
        ["a", "b", "c"]
    );
    assert_eq!(
        messages(&stream.read_forward(1, WIDE).expect("read")),
        ["b", "c"]
    );
    let two = Window { limit: 2, ..WIDE };
    assert_eq!(
        messages(&stream.read_backward(None, two).expect("read")),
        ["b", "c"]
    );
    assert_eq!(
        messages(&stream.read_backward(Some(1), two).expect("read")),
        ["a"]
    );
    let window = Window {
        start: Some(20),
        end: Some(30),
        ..WIDE
    };
    assert_eq!(
        messages(&stream.read_forward(0, window).expect("read")),
        ["b"]
    );
    let info = stream.info().expect("info");
    assert_eq!(
        (info.first_event_timestamp, info.last_event_timestamp),
        (Some(10), Some(30))
    );
    assert_eq!(info.last_ingestion_time, Some(5));
    assert!(info.stored_bytes > 0);
}

#[test]
fn a_reopened_store_keeps_groups_streams_events_and_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = LogStore::open(Some(dir.path())).expect("open");
        let tags = BTreeMap::from([("team".to_string(), "a".to_string())]);
        store.create_group("/ecs/app", 1, tags).expect("group");
        store.set_retention("/ecs/app", Some(7)).expect("retention");
        let stream = store.create_stream("/ecs/app", "web/1", 2).expect("stream");
        stream
            .append_sourced(&[(1, 10, "one"), (2, 11, "two")], 3)
            .expect("append");
    }
    // A crash in the middle of a write leaves half a record behind.
    let stream_dir = std::fs::read_dir(dir.path().join("logs"))
        .expect("logs dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.is_dir())
        .expect("group dir");
    let seg = std::fs::read_dir(&stream_dir)
        .expect("group dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.is_dir())
        .expect("stream dir")
        .join(format!("{:020}.seg", 0));
    let whole = std::fs::metadata(&seg).expect("segment").len();
    let mut torn = Vec::new();
    segment::encode(&mut torn, 12, 4, 3, "three");
    torn.truncate(torn.len() - 2);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .expect("segment");
    io::Write::write_all(&mut file, &torn).expect("torn write");
    drop(file);

    let store = LogStore::open(Some(dir.path())).expect("reopen");
    let group = store.group("/ecs/app").expect("group survives");
    let meta = group.meta().expect("meta");
    assert_eq!(meta.retention_in_days, Some(7));
    assert_eq!(meta.tags.get("team").map(String::as_str), Some("a"));
    let stream = store.stream("/ecs/app", "web/1").expect("stream survives");
    assert_eq!(
        messages(&stream.read_forward(0, WIDE).expect("read")),
        ["one", "two"]
    );
    assert_eq!(stream.info().expect("info").position, Some(2));
    assert_eq!(std::fs::metadata(&seg).expect("segment").len(), whole);
    // The next append goes on after the kept records.
    stream
        .append_sourced(&[(3, 12, "three")], 5)
        .expect("append");
    assert_eq!(
        messages(&stream.read_forward(0, WIDE).expect("read")),
        ["one", "two", "three"]
    );
}

#[test]
fn sourced_appends_skip_events_at_or_before_the_stored_position() {
    let store = LogStore::open(None).expect("memory store");
    let stream = store.ensure_stream("g", "s", true, 1).expect("stream");
    assert_eq!(
        stream
            .append_sourced(&[(1, 1, "a"), (2, 2, "b")], 3)
            .expect("append"),
        (2, 0, Some(2))
    );
    assert_eq!(
        stream
            .append_sourced(&[(2, 2, "b"), (3, 3, "c")], 3)
            .expect("append"),
        (1, 1, Some(3))
    );
    assert_eq!(
        messages(&stream.read_forward(0, WIDE).expect("read")),
        ["a", "b", "c"]
    );
}

#[test]
fn ensure_stream_refuses_a_missing_group_unless_asked_to_create_it() {
    let store = LogStore::open(None).expect("memory store");
    assert!(matches!(
        store.ensure_stream("g", "s", false, 1),
        Err(LogError::GroupNotFound { .. })
    ));
    store.ensure_stream("g", "s", true, 1).expect("created");
    store.ensure_stream("g", "s", false, 1).expect("exists now");
}

#[test]
fn retention_drops_whole_old_segments_and_deletion_reclaims_the_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LogStore::open(Some(dir.path())).expect("open");
    store.create_group("g", 0, BTreeMap::new()).expect("group");
    let stream = store.create_stream("g", "s", 0).expect("stream");
    let big = "x".repeat(1024);
    // Two segments' worth of old events, then one new event in a fresh segment.
    let old: Vec<(i64, &str, u64)> = (0..(SEGMENT_BYTES / 1024 + 10))
        .map(|i| (i as i64, big.as_str(), segment::NO_POSITION))
        .collect();
    for chunk in old.chunks(1000) {
        stream.append(chunk, 1).expect("append");
    }
    let now = 30 * DAY_MS;
    stream
        .append(&[(now, "fresh", segment::NO_POSITION)], now)
        .expect("append");
    store.set_retention("g", Some(1)).expect("retention");
    let before = stream.info().expect("info").stored_bytes;
    let freed = store.sweep_retention(now).expect("sweep");
    assert!(freed > 0 && freed < before, "freed {freed} of {before}");
    let left = stream.read_forward(0, WIDE).expect("read");
    assert_eq!(left.last().map(|e| e.message.as_str()), Some("fresh"));
    assert!(
        left.len() < 1000,
        "the old segment survived: {} events left",
        left.len()
    );
    store.delete_stream("g", "s").expect("delete stream");
    store.delete_group("g").expect("delete group");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("logs"))
        .expect("logs")
        .collect();
    assert!(leftovers.is_empty(), "files left behind: {leftovers:?}");
    assert!(matches!(
        store.group("g"),
        Err(LogError::GroupNotFound { .. })
    ));
}

#[test]
fn creating_twice_is_refused() {
    let store = LogStore::open(None).expect("memory store");
    store.create_group("g", 0, BTreeMap::new()).expect("group");
    assert!(matches!(
        store.create_group("g", 0, BTreeMap::new()),
        Err(LogError::GroupExists { .. })
    ));
    store.create_stream("g", "s", 0).expect("stream");
    assert!(matches!(
        store.create_stream("g", "s", 0),
        Err(LogError::StreamExists { .. })
    ));
}
