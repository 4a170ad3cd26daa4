//! The journal against the live state: whatever the store did, replaying its data directory
//! gives the same state (a change missing from [`super::super::Changes`] would not survive a
//! restart, and these tests would say which); and what a restart does to work under way.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::INTERRUPTED;
use crate::config::Config;
use crate::model::pipeline::PipelineSpec;
use crate::model::push::PushRequest;
use crate::model::repository::{RepoName, Repository};
use crate::model::run::{DeliveryResult, RunStatus, StepStatus};
use crate::model::time::Timestamp;
use crate::registry::RegistryImage;
use crate::store::persist::Image;
use crate::store::state::State;
use crate::store::{Dispatch, Store, Work};

const URL: &str = "http://hub.test";

fn config() -> Config {
    Config::default().with_callback_timeout(Some(Duration::from_secs(3600)))
}

fn open(dir: &Path, config: Config) -> (Store, mpsc::UnboundedReceiver<Work>) {
    Store::open(config, URL, dir).expect("the data directory opens")
}

/// The state as a JSON value, for comparing (the snapshot's own time left out), with the
/// hook index the state derives.
fn picture(state: &State, registry: RegistryImage) -> Value {
    let mut value = serde_json::to_value(Image::of(state, registry)).expect("serialises");
    value["at"] = Value::Null;
    let hooks: BTreeMap<&String, &(u64, usize)> = state.hooks.iter().collect();
    value["hooks"] = json!(hooks);
    value["pending"] = json!(state.pending);
    value
}

fn live_picture(store: &Store) -> Value {
    store
        .shared
        .registry
        .image_locked(|registry| store.read(|state| picture(state, registry)))
}

fn replayed_picture(dir: &Path, config: &Config) -> Value {
    let mut loaded = Store::load(config, dir).expect("loads");
    loaded.state.count_pending();
    let picture = loaded
        .registry
        .image_locked(|image| picture(&loaded.state, image));
    loaded.journal.close();
    picture
}

fn answered(dispatch: &Dispatch, status: u16) -> crate::store::DeliveryRecord {
    let result = DeliveryResult {
        status: Some(status),
        error: None,
        duration_ms: 1,
        response_body: Some("ok".to_owned()),
    };
    dispatch.record(
        Timestamp::now(),
        BTreeMap::new(),
        dispatch.payload.to_json(),
        result,
    )
}

#[derive(Clone, Debug)]
enum Op {
    CreateRepository(u8),
    CreatePipeline {
        repo: u8,
        name: u8,
        hooks: u8,
        final_callback: bool,
    },
    UpdatePipeline {
        repo: u8,
        name: u8,
        hooks: u8,
    },
    DeletePipeline {
        repo: u8,
        name: u8,
    },
    Push {
        repo: u8,
        tag: u8,
    },
    Send(u8),
    Answer {
        which: u8,
        status: u16,
    },
    Callback {
        which: u8,
        state: u8,
    },
    TimeOut(u8),
    Login,
    ForgetTag {
        repo: u8,
        tag: u8,
    },
    Reset,
    ImportItself,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..3u8).prop_map(Op::CreateRepository),
        2 => (0..3u8, 0..2u8, 1..4u8, any::<bool>()).prop_map(|(repo, name, hooks, final_callback)| {
            Op::CreatePipeline { repo, name, hooks, final_callback }
        }),
        1 => (0..3u8, 0..2u8, 1..4u8).prop_map(|(repo, name, hooks)| Op::UpdatePipeline { repo, name, hooks }),
        1 => (0..3u8, 0..2u8).prop_map(|(repo, name)| Op::DeletePipeline { repo, name }),
        4 => (0..4u8, 0..3u8).prop_map(|(repo, tag)| Op::Push { repo, tag }),
        4 => any::<u8>().prop_map(Op::Send),
        4 => (any::<u8>(), prop_oneof![Just(200u16), Just(500u16)]).prop_map(|(which, status)| Op::Answer { which, status }),
        4 => (any::<u8>(), 0..3u8).prop_map(|(which, state)| Op::Callback { which, state }),
        1 => any::<u8>().prop_map(Op::TimeOut),
        1 => Just(Op::Login),
        1 => (0..4u8, 0..3u8).prop_map(|(repo, tag)| Op::ForgetTag { repo, tag }),
        1 => Just(Op::Reset),
        1 => Just(Op::ImportItself),
    ]
}

fn repo(i: u8) -> RepoName {
    RepoName::new("acme", &format!("app{i}")).unwrap()
}

/// Plays `ops` against a store over `dir`, answering the engine's work by hand.
fn play(store: &Store, queue: &mut mpsc::UnboundedReceiver<Work>, ops: &[Op]) {
    let mut queued: Vec<Dispatch> = Vec::new();
    let mut sent: Vec<Dispatch> = Vec::new();
    let pick =
        |list: &Vec<Dispatch>, i: u8| (!list.is_empty()).then(|| usize::from(i) % list.len());
    for op in ops {
        while let Ok(work) = queue.try_recv() {
            if let Work::Deliver(dispatch) = work {
                queued.push(*dispatch);
            }
        }
        match op {
            Op::CreateRepository(i) => {
                let _ = store.create_repository(Repository::new(&repo(*i)));
            }
            Op::CreatePipeline {
                repo: r,
                name,
                hooks,
                final_callback,
            } => {
                let urls: Vec<String> = (0..*hooks)
                    .map(|h| format!("http://u:p@r{h}.test/"))
                    .collect();
                let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
                let mut spec = PipelineSpec::new(&format!("p{name}"), &urls);
                spec.expect_final_callback = Some(*final_callback);
                let _ = store.create_pipeline(&repo(*r), spec, "acme");
            }
            Op::UpdatePipeline {
                repo: r,
                name,
                hooks,
            } => {
                let urls: Vec<String> = (0..*hooks).map(|h| format!("http://s{h}.test/")).collect();
                let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
                let spec = PipelineSpec::new(&format!("p{name}"), &urls);
                let _ = store.update_pipeline(&repo(*r), &format!("p{name}"), spec);
            }
            Op::DeletePipeline { repo: r, name } => {
                let _ = store.delete_pipeline(&repo(*r), &format!("p{name}"));
            }
            Op::Push { repo: r, tag } => {
                let push = PushRequest {
                    tag: Some(format!("v{tag}")),
                    ..PushRequest::default()
                };
                let _ = store.push(&repo(*r), push);
            }
            Op::Send(i) => {
                if let Some(i) = pick(&queued, *i) {
                    let dispatch = queued.remove(i);
                    if store.sending(&dispatch) {
                        sent.push(dispatch);
                    }
                }
            }
            Op::Answer { which, status } => {
                if let Some(i) = pick(&sent, *which) {
                    let dispatch = sent.remove(i);
                    store.delivered(&dispatch, answered(&dispatch, *status), 0);
                }
            }
            Op::Callback { which, state } => {
                let all: Vec<&Dispatch> = queued.iter().chain(&sent).collect();
                if !all.is_empty() {
                    let dispatch = all[usize::from(*which) % all.len()];
                    let state = ["success", "failure", "error"][usize::from(*state)];
                    let body = json!({ "state": state, "description": "d" }).to_string();
                    let repository = store.run(dispatch.run_id).map(|r| r.repository().clone());
                    if let Ok(repository) = repository {
                        let _ = store.callback(&repository, &dispatch.hook_id, body.as_bytes());
                    }
                }
            }
            Op::TimeOut(i) => {
                if let Some(i) = pick(&sent, *i) {
                    let d = &sent[i];
                    store.callback_timed_out(d.run_id, d.step, &d.hook_id);
                }
            }
            Op::Login => {
                store
                    .login("hubmock", "hubmock")
                    .expect("the default user logs in");
            }
            Op::ForgetTag { repo: r, tag } => {
                let tag = format!("v{tag}");
                store.forget_tags(&repo(*r), |t| t.name() == tag);
            }
            Op::Reset => store.reset(),
            Op::ImportItself => store.import(&store.export()).expect("an export imports"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Replaying the journal (and snapshots, taken often here) gives the state the store had.
    #[test]
    fn the_journal_replays_to_the_live_state(
        ops in proptest::collection::vec(op(), 1..60),
        snapshot_bytes in prop_oneof![Just(u64::MAX), Just(2048u64)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        // A short history, so pushes also forget runs.
        let config = Config { snapshot_bytes, history_limit: 2, ..config() };
        let (store, mut queue) = open(dir.path(), config.clone());
        // Every repository starts with a pipeline, so that pushes start runs.
        let setup: Vec<Op> = (0..3u8)
            .flat_map(|repo| {
                let pipeline = Op::CreatePipeline { repo, name: 0, hooks: 2, final_callback: true };
                [Op::CreateRepository(repo), pipeline]
            })
            .collect();
        play(&store, &mut queue, &[setup, ops].concat());
        let live = live_picture(&store);
        store.close();
        drop(store);
        let replayed = replayed_picture(dir.path(), &config);
        prop_assert_eq!(replayed, live);
    }
}

fn pushed(store: &Store, queue: &mut mpsc::UnboundedReceiver<Work>, hooks: &[&str]) -> Dispatch {
    let name = repo(0);
    store.create_repository(Repository::new(&name)).unwrap();
    store
        .create_pipeline(&name, PipelineSpec::new("p", hooks), "acme")
        .unwrap();
    store.push(&name, PushRequest::default()).unwrap();
    loop {
        if let Ok(Work::Deliver(dispatch)) = queue.try_recv() {
            return *dispatch;
        }
    }
}

#[test]
fn a_delivery_in_flight_at_a_crash_is_recorded_as_interrupted_and_never_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut queue) = open(dir.path(), config());
    let dispatch = pushed(&store, &mut queue, &["http://a.test/", "http://b.test/"]);
    assert!(store.sending(&dispatch));
    store.close();
    drop(store);
    let (store, mut queue) = open(dir.path(), config());
    let run = store.run(dispatch.run_id).unwrap();
    let delivery = run.steps()[0].delivery.as_ref().expect("recorded");
    assert_eq!(delivery.error.as_deref(), Some(INTERRUPTED));
    assert_eq!(run.steps()[0].status, StepStatus::DeliveryFailed);
    assert_ne!(run.status(), RunStatus::Pending);
    // Nothing is sent: neither the interrupted step again nor the next one.
    while let Ok(work) = queue.try_recv() {
        assert!(!matches!(work, Work::Deliver(_)), "sent again: {work:?}");
    }
    store.close();
}

#[test]
fn a_delivery_queued_but_not_sent_goes_out_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut queue) = open(dir.path(), config());
    let dispatch = pushed(&store, &mut queue, &["http://u:secret@a.test/"]);
    store.close();
    drop(store);
    let (store, mut queue) = open(dir.path(), config());
    let Ok(Work::Deliver(again)) = queue.try_recv() else {
        panic!("the queued delivery is queued again");
    };
    assert_eq!((again.run_id, again.step), (dispatch.run_id, dispatch.step));
    assert_eq!(again.hook_id, dispatch.hook_id);
    // The hook URL keeps its credentials (a run shows them as ***).
    assert_eq!(again.url, "http://u:secret@a.test/");
    assert!(store.sending(&again));
    store.close();
}

#[test]
fn a_callback_wait_resumes_with_the_time_that_was_left() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut queue) = open(dir.path(), config());
    let dispatch = pushed(&store, &mut queue, &["http://a.test/", "http://b.test/"]);
    assert!(store.sending(&dispatch));
    store.delivered(&dispatch, answered(&dispatch, 200), 0);
    let before = store.run(dispatch.run_id).unwrap().steps()[0].callback_deadline;
    let before = before.expect("a callback timeout is in force");
    store.close();
    drop(store);
    let reopened = Timestamp::now();
    let (store, mut queue) = open(dir.path(), config());
    let run = store.run(dispatch.run_id).unwrap();
    assert_eq!(run.steps()[0].status, StepStatus::AwaitingCallback);
    let after = run.steps()[0].callback_deadline.expect("still armed");
    // About an hour from the restart, not from the push: the time down does not count.
    assert!(
        after.since(reopened) > Duration::from_secs(3590),
        "{after:?}"
    );
    assert!(after.since(before) < Duration::from_secs(60));
    let mut armed = false;
    while let Ok(work) = queue.try_recv() {
        if let Work::ArmTimer {
            run_id,
            step,
            deadline,
            ..
        } = work
        {
            armed |= run_id == dispatch.run_id && step == 0 && deadline == after;
        }
    }
    assert!(armed, "the timer is armed again");
    // And the old callback URL still works.
    let body = json!({ "state": "success" }).to_string();
    let run = store
        .callback(&repo(0), &dispatch.hook_id, body.as_bytes())
        .expect("the hook id survives the restart");
    assert_eq!(run.steps()[0].status, StepStatus::Success);
    store.close();
}

#[test]
fn a_second_store_on_the_same_directory_is_refused_while_the_first_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _queue) = open(dir.path(), config());
    let Err(refused) = Store::open(config(), URL, dir.path()) else {
        panic!("a second store opened the same directory");
    };
    let message = refused.to_string();
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    store.close();
}

/// Puts an empty OCI index by tag `tag` into acme/app0, as the registry's route does before it
/// fires the push event.
async fn put_index(store: &Store, tag: &str) -> crate::registry::TagPut {
    use crate::registry::manifest::Manifest;
    use crate::registry::{Algorithm, Digest};
    let media_type = "application/vnd.oci.image.index.v1+json";
    let body = json!({ "schemaVersion": 2, "mediaType": media_type, "manifests": [] });
    let bytes = bytes::Bytes::from(body.to_string());
    let manifest = Manifest::parse(Some(media_type), &bytes).expect("a valid index");
    let digest = Digest::of(Algorithm::Sha256, &bytes);
    store
        .registry()
        .put_manifest(&repo(0), Some(tag), &digest, bytes, &manifest, None)
        .await
        .expect("stored")
}

fn tag_resolves(store: &Store, tag: &str) -> bool {
    let reference = crate::registry::Reference::Tag(tag.to_owned());
    store.registry().open_manifest(&repo(0), &reference).is_ok()
}

#[tokio::test]
async fn a_manifest_put_whose_push_event_a_crash_cut_off_is_undone_at_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _queue) = open(dir.path(), config());
    store.create_repository(Repository::new(&repo(0))).unwrap();
    // Pushed and its push event recorded: stays.
    let kept = put_index(&store, "kept").await;
    let push = crate::model::tag::TagPush {
        repository: repo(0),
        tag: "kept".to_owned(),
        digest: kept.digest.to_string(),
        media_type: "application/vnd.oci.image.index.v1+json".to_owned(),
        size: 0,
        images: Vec::new(),
        pusher: None,
        pushed_at: Timestamp::now(),
    };
    store.tag_pushed(&push, kept.id).unwrap();
    store.registry().settle(&kept);
    // Stored, but the process dies before its push event.
    let _cut = put_index(&store, "cut").await;
    assert!(tag_resolves(&store, "cut"));
    store.close();
    drop(store);
    for _ in 0..2 {
        // Twice: the undoing is journaled, and the second restart agrees.
        let (store, _queue) = open(dir.path(), config());
        assert!(tag_resolves(&store, "kept"));
        assert!(store.tag(&repo(0), "kept").is_ok());
        assert!(
            !tag_resolves(&store, "cut"),
            "half a push survived the crash"
        );
        assert!(store.tag(&repo(0), "cut").is_err());
        store.close();
    }
}

#[test]
fn a_one_step_run_awaiting_its_callback_keeps_its_timer_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut queue) = open(dir.path(), config());
    let dispatch = pushed(&store, &mut queue, &["http://a.test/"]);
    assert!(store.sending(&dispatch));
    store.delivered(&dispatch, answered(&dispatch, 200), 0);
    store.close();
    drop(store);
    let (store, mut queue) = open(dir.path(), config());
    let run = store.run(dispatch.run_id).unwrap();
    assert_eq!(run.steps()[0].status, StepStatus::AwaitingCallback);
    let deadline = run.steps()[0].callback_deadline.expect("still armed");
    let mut armed = false;
    while let Ok(work) = queue.try_recv() {
        if let Work::ArmTimer {
            run_id,
            step,
            deadline: at,
            ..
        } = work
        {
            armed |= run_id == dispatch.run_id && step == 0 && at == deadline;
        }
    }
    assert!(armed, "the only step's timer is armed again");
    store.close();
}

/// The generation `CURRENT` names, and the journals and snapshots in `dir`.
fn generations(dir: &Path) -> (String, Vec<String>) {
    let current = std::fs::read_to_string(dir.join("CURRENT")).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("journal-") || n.starts_with("snapshot-"))
        .collect();
    files.sort();
    (current.trim().to_owned(), files)
}

/// Journals that grew past `--snapshot-bytes` without a snapshot (every background one was
/// cut off by a crash) are folded into a snapshot at the next start, before it serves; a start
/// with little to replay writes none.
#[test]
fn a_start_with_more_journal_than_the_snapshot_size_writes_a_snapshot_first() {
    let dir = tempfile::tempdir().unwrap();
    let never = Config {
        snapshot_bytes: u64::MAX,
        ..config()
    };
    let (store, mut queue) = open(dir.path(), never);
    let mut ops = vec![Op::CreateRepository(0)];
    ops.push(Op::CreatePipeline {
        repo: 0,
        name: 0,
        hooks: 2,
        final_callback: true,
    });
    for tag in 0..30 {
        ops.push(Op::Push { repo: 0, tag });
    }
    play(&store, &mut queue, &ops);
    let live = live_picture(&store);
    store.close();
    drop(store);
    let journal = std::fs::metadata(dir.path().join("journal-0"))
        .unwrap()
        .len();
    assert!(journal > 8 * 1024, "the journal has {journal} bytes");
    assert_eq!(
        generations(dir.path()),
        ("0".to_owned(), vec!["journal-0".to_owned()])
    );
    // A background snapshot that a crash cut off leaves the journal it started behind it,
    // unnamed by CURRENT: here an empty one (a journal's 12-byte header).
    let header = std::fs::read(dir.path().join("journal-0")).unwrap()[..12].to_vec();
    std::fs::write(dir.path().join("journal-1"), header).unwrap();

    let small = Config {
        snapshot_bytes: 8 * 1024,
        ..config()
    };
    let (store, _queue) = open(dir.path(), small.clone());
    // Written before `open` answered: nothing was served yet; both journals it replaces are
    // gone.
    assert_eq!(
        generations(dir.path()),
        (
            "2".to_owned(),
            vec!["journal-2".to_owned(), "snapshot-2".to_owned()]
        )
    );
    assert_eq!(live_picture(&store), live);
    store.close();
    drop(store);
    assert_eq!(replayed_picture(dir.path(), &small), live);

    // Little to replay now: no snapshot.
    let (store, _queue) = open(dir.path(), small);
    assert_eq!(generations(dir.path()).0, "2");
    store.close();
}
