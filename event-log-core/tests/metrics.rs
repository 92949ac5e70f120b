//! The log reports appends, groups, merges and refusals through the `metrics`
//! facade, under the names `event_log_core::metrics` documents.

use event_log_core::metrics::{APPEND_GROUP_OPS, APPEND_SECONDS, APPENDED_OPS, MERGED_OPS};
use event_log_core::{EventLog, MemStore, SigningKey, Transition, sync};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

fn fired(i: u64) -> Transition {
    Transition::now(format!("s-{i}"), "backlog", "coding", "DepsMet")
}

/// (name, labels, value) of every metric recorded.
type Seen = Vec<(String, Vec<(String, String)>, DebugValue)>;

fn recorded(recorder: &DebuggingRecorder) -> Seen {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(k, _, _, v)| {
            let key = k.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (key.name().to_owned(), labels, v)
        })
        .collect()
}

fn counter(seen: &Seen, name: &str) -> u64 {
    seen.iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, _, v)| match v {
            DebugValue::Counter(c) => *c,
            other => panic!("{name} is not a counter: {other:?}"),
        })
        .sum()
}

fn samples(seen: &Seen, name: &str, label: Option<(&str, &str)>) -> usize {
    seen.iter()
        .filter(|(n, labels, _)| {
            n == name && label.is_none_or(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| match v {
            DebugValue::Histogram(h) => h.len(),
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .sum()
}

#[test]
fn appends_groups_and_merges_are_reported() {
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        pollster::block_on(async {
            let a = EventLog::open(MemStore::new(), SigningKey::from_bytes(&[1; 32]))
                .await
                .unwrap();
            let b = EventLog::open(MemStore::new(), SigningKey::from_bytes(&[2; 32]))
                .await
                .unwrap();
            for i in 0..3 {
                a.append_transition(fired(i)).await.unwrap();
            }
            a.append_all(vec![fired(3).into(), fired(4).into()])
                .await
                .unwrap();
            let _ = b
                .append_transition(Transition::now("", "a", "b", "E").with_meta("", "x"))
                .await
                .unwrap_err();
            sync(&a, &b).await.unwrap();
        })
    });
    let seen = recorded(&recorder);
    assert_eq!(counter(&seen, APPENDED_OPS), 5, "{seen:?}");
    assert_eq!(samples(&seen, APPEND_SECONDS, Some(("outcome", "ok"))), 4);
    assert_eq!(
        samples(&seen, APPEND_SECONDS, Some(("outcome", "refused"))),
        1,
        "{seen:?}"
    );
    assert_eq!(
        samples(&seen, APPEND_GROUP_OPS, None),
        4,
        "one write per call here"
    );
    assert_eq!(
        counter(&seen, MERGED_OPS),
        5,
        "b merged a's five ops: {seen:?}"
    );
    for (name, labels, _) in &seen {
        assert!(name.starts_with("event_log_"), "{name}");
        for (k, v) in labels {
            assert!(v.len() < 32, "label {k}={v} looks like an id");
        }
    }
}
