//! Not a fuzz target: writes the seed corpora (valid inputs for every
//! target, made with fixed keys) into `corpus/TARGET/` and exits.
//! `cargo fuzz run seed` (from `fuzz/`); see docs/fuzzing.md.
#![no_main]

use data_encoding::{BASE64, BASE64URL_NOPAD, HEXLOWER};
use libfuzzer_sys::fuzz_target;
use node_core::call::conf::{RoomCall, Standing};
use node_core::crypto::{BoxSecretKey, SecretBytes, SigningKey};
use node_core::files::{FileOffer, chunk_size_for};
use node_core::identity::entry::{kind as account_kind, sign_join};
use node_core::identity::{AccountEntry, Card};
use node_core::log::{Draft, Event, LogKind};
use node_core::mailbox::{self, DeliveryToken, MailboxKey, SignedPrekey};
use node_core::names::{NameAction, NameRecord};
use node_core::node::rooms::RoomLink;
use node_core::push::PushHandle;
use node_core::rooms::{History, Membership, RoomContent, Trust};
use node_core::sync::file_msg::{ChunkHead, FileRequest, MAX_REQUEST};
use node_core::sync::join::{Invite, JoinMsg};
use node_core::sync::message::Msg;
use node_core::{AccountId, DeviceId, EventId, LogId};
use std::collections::BTreeMap;
use std::path::Path;

fuzz_target!(
    init: {
        if write_all() {
            std::process::exit(0);
        }
    },
    |_data: &[u8]| {}
);

/// Writes every corpus; true when done (the caller then exits).
fn write_all() -> bool {
    node_core::crypto::init();
    let key = SigningKey::from_seed(&SecretBytes::new([1; 32]));
    let device = DeviceId::from(key.verifying_key());
    let genesis = account_genesis(&key);
    let account = AccountId::from_bytes(*genesis.id().as_bytes());
    let card = Card::sign(&key, &card(account, device));

    let msgs = sync_msgs(&genesis);
    put("sync_msg", msgs.iter().map(Msg::encode));
    put("event", events(&key, &genesis).iter().map(Event::encode));
    put("card", with_modes(&card, "kith:card/"));
    put(
        "contact_request",
        [
            node_core::requests::How::Card,
            node_core::requests::How::Introduction(AccountId::from_bytes([7; 32])),
            node_core::requests::How::Nameserver("alice@example.org".into()),
        ]
        .into_iter()
        .map(|how| {
            node_core::requests::ContactRequest::bounded(
                card.clone(),
                how,
                &["hello".to_owned(), "it's me".to_owned()],
                1_700_000_000_000,
                vec![genesis.clone()],
            )
            .encode()
        }),
    );
    put(
        "request_answer",
        [
            node_core::requests::RequestAnswer::kept(vec![genesis.clone()]),
            node_core::requests::RequestAnswer {
                code: node_core::requests::ANSWER_CONTACT,
                account_log: vec![],
            },
            node_core::requests::RequestAnswer {
                code: node_core::requests::ANSWER_BUSY,
                account_log: vec![],
            },
        ]
        .iter()
        .map(|a| a.encode()),
    );
    put(
        "request_messages",
        [
            vec![],
            vec!["hello".to_owned()],
            vec!["é".repeat(1024), "two".into(), "three".into()],
        ]
        .iter()
        .map(|m| node_core::requests::encode_messages(m)),
    );
    let invite = invite(account, device).to_code();
    put("invite", with_modes(&invite, "kith:join/"));
    put(
        "join_msg",
        join_msgs(&key, account).iter().map(JoinMsg::encode),
    );
    put("file_msg", file_msgs());
    put("media_packet", media_packets());
    put("video_frames", video_frames());
    put("call_msg", call_msgs(device));
    put("call_record", call_records(device));
    put(
        "room_link",
        with_modes(&room_link(account, device).to_uri(), "kith:room/"),
    );
    put("deposit", deposits(&genesis));
    put("deposit_payload", deposit_payloads(&genesis));
    put("mailbox_auth", mailbox_auth(&key));
    put("name_record", name_records(&key, account, &card, &genesis));
    put(
        "handle",
        [
            "alice@example.org",
            " Élodie@Example.ORG. ",
            "мария@x.org",
            "a.b_c-d@a-b.c",
        ]
        .map(|s| s.as_bytes().to_vec()),
    );
    put(
        "account_entry",
        account_entries(&key, account)
            .iter()
            .map(|e| kinded(e.kind(), e.encode())),
    );
    put(
        "room_content",
        room_contents(account)
            .iter()
            .map(|c| kinded(c.kind(), c.encode())),
    );
    put("file_offer", offers().iter().map(FileOffer::encode));
    put("pushd_request", pushd_requests(&key));
    put("mailboxd_request", mailboxd_requests());
    put(
        "named_request",
        named_requests(&name_records(&key, account, &card, &genesis)),
    );
    true
}

fn put(target: &str, inputs: impl IntoIterator<Item = Vec<u8>>) {
    let dir = Path::new("corpus").join(target);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("creating {}: {e}", dir.display());
    }
    for (i, input) in inputs.into_iter().enumerate() {
        let path = dir.join(format!("seed-{i:02}"));
        if let Err(e) = std::fs::write(&path, input) {
            panic!("writing {}: {e}", path.display());
        }
    }
}

/// A URI-like input in both target modes: 0 + the text, 1 + the binary body.
fn with_modes(uri: &str, prefix: &str) -> Vec<Vec<u8>> {
    let mut text = vec![0];
    text.extend_from_slice(uri.as_bytes());
    let mut body = vec![1];
    body.extend(node_core::wire::from_base32(&uri[prefix.len()..], "seed").unwrap_or_default());
    vec![text, body]
}

fn kinded(kind: u16, body: Vec<u8>) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend(body);
    out
}

fn moded(mode: u8, body: impl AsRef<[u8]>) -> Vec<u8> {
    let mut out = vec![mode];
    out.extend_from_slice(body.as_ref());
    out
}

fn account_genesis(key: &SigningKey) -> Event {
    Event::sign(
        key,
        Draft {
            log: None,
            log_kind: LogKind::Account,
            seq: 1,
            prev: None,
            parents: vec![],
            time: 1_700_000_000_000,
            kind: account_kind::GENESIS,
            body: AccountEntry::Genesis {
                account_name: "alice".into(),
                device_name: "laptop".into(),
                recovery: None,
            }
            .encode(),
        },
    )
}

fn events(key: &SigningKey, genesis: &Event) -> Vec<Event> {
    let log = genesis.log_id();
    let message = Event::sign(
        key,
        Draft {
            log: Some(log),
            log_kind: LogKind::Account,
            seq: 2,
            prev: Some(genesis.id()),
            parents: vec![(genesis.id(), 0), (EventId::from_bytes([9; 32]), 3)],
            time: 1_700_000_000_001,
            kind: account_kind::REVOKE_DEVICE,
            body: AccountEntry::RevokeDevice {
                device: DeviceId::from_bytes([4; 32]),
                cutoff_seq: 9,
                cuts: false,
            }
            .encode(),
        },
    );
    vec![genesis.clone(), message.clone(), message.without_body()]
}

fn sync_msgs(genesis: &Event) -> Vec<Msg> {
    let log = LogId::from_bytes([3; 32]);
    let ids: Vec<EventId> = (0..3).map(|i| EventId::from_bytes([i; 32])).collect();
    vec![
        Msg::Hello {
            version: 1,
            account: AccountId::from_bytes([1; 32]),
        },
        Msg::Begin {
            log,
            heads: ids.clone(),
        },
        Msg::Heads {
            log,
            heads: Some(ids.clone()),
        },
        Msg::Heads { log, heads: None },
        Msg::Same { log },
        Msg::Recon {
            log,
            recon: vec![0x61, 1, 2, 3],
        },
        Msg::Refuse { log },
        Msg::Events {
            log,
            events: vec![genesis.encode(), vec![1, 2]],
        },
        Msg::Want {
            log,
            ids: ids.clone(),
        },
        Msg::Ack {
            log,
            ids: ids.clone(),
        },
        Msg::Synced { log },
        Msg::Resync,
        Msg::Hints {
            addrs: vec!["127.0.0.1:4000".into(), "[::1]:9".into()],
        },
        Msg::DeviceHints {
            device: DeviceId::from_bytes([8; 32]),
            addrs: vec!["10.0.0.1:1".into()],
        },
        Msg::Have { log, ids },
    ]
}

fn card(account: AccountId, device: DeviceId) -> Card {
    Card {
        account,
        name: "Alice".into(),
        signer: device,
        devices: vec![DeviceId::from_bytes([2; 32]), device],
        hints: vec!["192.0.2.1:4000".into(), "https://relay.example/".into()],
        issued: 1_700_000_000_000,
    }
}

fn invite(account: AccountId, device: DeviceId) -> Invite {
    Invite {
        account,
        device,
        hints: vec![
            "127.0.0.1:4000".parse().expect("valid seed"),
            "[::1]:5".parse().expect("valid seed"),
        ],
        secret: SecretBytes::new([3; 16]),
        expires: 1_700_000_600_000,
    }
}

/// Call control messages, one of each.
fn call_msgs(device: DeviceId) -> Vec<Vec<u8>> {
    use node_core::call::msg::{CallId, CallMsg, Ended};
    let call = CallId([3; 16]);
    [
        CallMsg::Offer { call, video: true },
        CallMsg::Ringing(call),
        CallMsg::Busy(call),
        CallMsg::Answer { call, video: false },
        CallMsg::Accepted(call),
        CallMsg::End { call, why: Ended::Taken(device) },
        CallMsg::End { call, why: Ended::Hangup },
        CallMsg::End { call, why: Ended::Moved(device) },
        CallMsg::Resume(call),
        CallMsg::Move { call, to: device },
        CallMsg::Handover(node_core::call::Handover {
            call,
            peer: device,
            caller: true,
            video: false,
            elapsed_ms: 90_000,
            answered_by: device,
        }),
        CallMsg::Elsewhere {
            call,
            contact: node_core::AccountId::from_bytes([6; 32]),
        },
    ]
    .iter()
    .map(CallMsg::encode)
    .collect()
}

/// Call records: answered (with a device and a duration) and missed.
fn call_records(device: DeviceId) -> Vec<Vec<u8>> {
    use node_core::call::msg::CallId;
    use node_core::call::record::{CallRecord, Outcome};
    let answered = CallRecord {
        call: CallId([4; 16]),
        video: true,
        outcome: Outcome::Answered,
        answered_by: Some(device),
        duration_ms: 65_000,
    };
    let missed = CallRecord {
        call: CallId([5; 16]),
        video: false,
        outcome: Outcome::Missed,
        answered_by: None,
        duration_ms: 0,
    };
    vec![answered.encode(), missed.encode()]
}

/// Media datagrams: an audio frame, a silent one, a key frame's last piece.
fn media_packets() -> Vec<Vec<u8>> {
    use kith_media::packet::{FLAG_END, FLAG_KEY, FLAG_SILENT, Kind, Packet};
    let audio = |flags, payload: Vec<u8>| Packet {
        kind: Kind::Audio,
        flags,
        layer: 0,
        seq: 42,
        ts: 42 * 960,
        payload,
    };
    let video = Packet {
        kind: Kind::Video,
        flags: FLAG_KEY | FLAG_END,
        layer: 1,
        seq: 7,
        ts: 90_000,
        payload: vec![0x65; 900],
    };
    let report = kith_media::packet::Report {
        loss_permille: 100,
        target_ms: 40,
        video_loss_permille: 20,
    }
    .packet(3);
    [
        audio(0, vec![0xfc; 80]),
        audio(FLAG_SILENT, vec![0xf8]),
        video,
        report,
        kith_media::packet::key_request(0, 1),
    ]
    .iter()
    .filter_map(|p| p.encode().ok())
    .collect()
}

/// Runs of video datagrams (u16 length, bytes): two real coded frames,
/// a key frame and the next, cut into pieces; and the same reordered.
fn video_frames() -> Vec<Vec<u8>> {
    use kith_media::video::{HEIGHT, VideoEncoder, WIDTH, synthetic};
    let Ok(mut enc) = VideoEncoder::new(300_000, 30) else {
        return Vec::new();
    };
    let mut seq = 0;
    let mut packets = Vec::new();
    for i in 0..3 {
        if let Ok(Some(e)) = enc.encode(&synthetic(i, WIDTH / 4, HEIGHT / 4)) {
            packets.extend(kith_media::frames::pieces(&e.data, e.key, i * 3000, 0, &mut seq));
        }
    }
    let run = |ps: &[kith_media::packet::Packet]| {
        let mut out = Vec::new();
        for p in ps {
            if let Ok(b) = p.encode() {
                out.extend_from_slice(&(b.len() as u16).to_be_bytes());
                out.extend_from_slice(&b);
            }
        }
        out
    };
    let mut reversed = packets.clone();
    reversed.reverse();
    vec![run(&packets), run(&reversed)]
}

/// File transfer frames: requests (none, some, the most chunks) and
/// chunk heads.
fn file_msgs() -> Vec<Vec<u8>> {
    let file = EventId::from_bytes([9; 32]);
    let mut out: Vec<Vec<u8>> = [vec![], vec![0, 3, 7], (0..MAX_REQUEST as u32).collect()]
        .into_iter()
        .map(|chunks| FileRequest { file, chunks }.encode())
        .collect();
    out.push(ChunkHead::Chunk { index: 2, len: 524_288 }.encode());
    out.push(ChunkHead::NotHere(5).encode());
    out
}

fn join_msgs(key: &SigningKey, account: AccountId) -> Vec<JoinMsg> {
    vec![
        JoinMsg::Request {
            secret: SecretBytes::new([3; 16]),
            name: "phone".into(),
            join: sign_join(key, account, "phone"),
        },
        JoinMsg::Accepted,
        JoinMsg::Refused("the code has expired".into()),
    ]
}

fn room_link(account: AccountId, device: DeviceId) -> RoomLink {
    RoomLink {
        room: LogId::from_bytes([6; 32]),
        creator: AccountId::from_bytes([7; 32]),
        via: account,
        devices: vec![
            (
                device,
                vec!["127.0.0.1:4000".into(), "https://relay.example/".into()],
            ),
            (DeviceId::from_bytes([2; 32]), vec![]),
        ],
    }
}

fn deposits(genesis: &Event) -> Vec<Vec<u8>> {
    let prekey = BoxSecretKey::from_bytes(SecretBytes::new([7; 32])).public_key();
    let other = BoxSecretKey::from_bytes(SecretBytes::new([8; 32])).public_key();
    let key = SigningKey::from_seed(&SecretBytes::new([9; 32]));
    let payload = mailbox::encode_events(&key, &PAYLOAD_TO, &[genesis.encode(), vec![1, 2, 3]]);
    [vec![prekey], vec![other, prekey]]
        .iter()
        .filter_map(|to| mailbox::seal_deposit(to, &payload).ok())
        .collect()
}

/// The account the deposit_payload target decodes for.
const PAYLOAD_TO: [u8; 32] = [7; 32];

fn deposit_payloads(genesis: &Event) -> Vec<Vec<u8>> {
    let key = SigningKey::from_seed(&SecretBytes::new([9; 32]));
    vec![
        mailbox::encode_events(&key, &PAYLOAD_TO, &[genesis.encode(), vec![1, 2, 3]]),
        mailbox::encode_events(&key, &PAYLOAD_TO, &[]),
    ]
}

fn mailbox_auth(key: &SigningKey) -> Vec<Vec<u8>> {
    let prekey = BoxSecretKey::from_bytes(SecretBytes::new([7; 32])).public_key();
    let token = DeliveryToken::from_bytes(SecretBytes::new([4; 32]));
    let mailbox = MailboxKey::from_seed(&SecretBytes::new([5; 32]));
    let challenge = [6; mailbox::CHALLENGE_LEN];
    vec![
        moded(
            0,
            SignedPrekey::sign(key, prekey, 1_700_000_000_000).encode(),
        ),
        moded(1, token.bearer()),
        moded(2, token.hash().to_string()),
        moded(3, mailbox.id().to_string()),
        moded(
            4,
            mailbox::sign_request(&mailbox, &challenge, "POST", "/v1/mailboxes/x", b"{}"),
        ),
        moded(
            5,
            node_core::push::sign_request(key, "POST", "/v1/wake", b"{}"),
        ),
    ]
}

fn name_records(key: &SigningKey, account: AccountId, card: &str, genesis: &Event) -> Vec<Vec<u8>> {
    let handle = "alice@example.org".parse().expect("valid seed");
    let log = std::slice::from_ref(genesis);
    let bind = NameAction::Bind { card: card.into() };
    vec![
        NameRecord::sign(key, &handle, account, &bind, 1_700_000_000_000, log),
        NameRecord::sign(
            key,
            &handle,
            account,
            &NameAction::Release,
            1_700_000_000_000,
            log,
        ),
    ]
}

fn account_entries(key: &SigningKey, account: AccountId) -> Vec<AccountEntry> {
    vec![
        AccountEntry::Genesis {
            account_name: "alice".into(),
            device_name: "laptop".into(),
            recovery: Some(key.verifying_key()),
        },
        AccountEntry::AddDevice {
            device: DeviceId::from_bytes([2; 32]),
            name: "phone".into(),
            join: sign_join(key, account, "phone"),
        },
        AccountEntry::RevokeDevice {
            device: DeviceId::from_bytes([2; 32]),
            cutoff_seq: 17,
            cuts: false,
        },
        AccountEntry::RevokeDevice {
            device: DeviceId::from_bytes([2; 32]),
            cutoff_seq: 17,
            cuts: true,
        },
    ]
}

fn room_contents(account: AccountId) -> Vec<RoomContent> {
    let mut users = BTreeMap::new();
    users.insert(account, 100);
    users.insert(AccountId::from_bytes([2; 32]), 50);
    let mut out = vec![
        RoomContent::Create {
            name: "plans".into(),
            public: true,
        },
        RoomContent::Power { users },
        RoomContent::Member {
            target: account,
            membership: Membership::Join,
        },
        RoomContent::Member {
            target: account,
            membership: Membership::Ban,
        },
        RoomContent::JoinRule { public: false },
        RoomContent::Name("plans".into()),
        RoomContent::Topic("where we meet".into()),
        RoomContent::History(History {
            confirmations: 2,
            trust: Trust::Members,
        }),
        RoomContent::Confirm(EventId::from_bytes([5; 32])),
        RoomContent::Message("hello, room".into()),
        RoomContent::Cut(node_core::log::Cut {
            device: DeviceId::from_bytes([2; 32]),
            head: EventId::from_bytes([6; 32]),
        }),
    ];
    out.extend(offers().into_iter().map(RoomContent::File));
    let call = node_core::call::CallId([7; 16]);
    let device = DeviceId::from_bytes([2; 32]);
    out.extend(
        [
            RoomCall::Start(call),
            RoomCall::Join { call, device },
            RoomCall::Standing {
                call,
                device,
                standing: Standing {
                    uplink_kbps: 111,
                    always_on: true,
                    direct: false,
                },
            },
        ]
        .into_iter()
        .map(RoomContent::Call),
    );
    out
}

fn offers() -> Vec<FileOffer> {
    [0u64, 1, 300_000, 1900 * 256 * 1024 + 1]
        .into_iter()
        .filter_map(|size| {
            let chunk_size = chunk_size_for(size)?;
            let n = size.div_ceil(u64::from(chunk_size));
            Some(FileOffer {
                name: format!("file-{size}.bin"),
                size,
                hash: [1; 32],
                chunk_size,
                chunks: (0..n).map(|i| [i as u8; 32]).collect(),
            })
        })
        .collect()
}

/// Bodies and headers as `kith-pushd`'s tests send them, with the
/// `pushd_request` target's mode byte.
fn pushd_requests(key: &SigningKey) -> Vec<Vec<u8>> {
    let device = DeviceId::from(key.verifying_key());
    let issued = 1_700_000_000_000_i64;
    // The P-256 base point: a valid subscriber key.
    let p256dh = BASE64URL_NOPAD.encode(
        &HEXLOWER
            .decode(b"046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
            .expect("valid seed"),
    );
    let auth = BASE64URL_NOPAD.encode(&[7; 16]);
    let handle = PushHandle::from_bytes([8; 32]);
    let nonce = node_core::wire::to_base32(&[9; 16]);
    vec![
        moded(
            0,
            format!(
                r#"{{"platform":"apns","token":"{}","senders":["{device}"],"issued":{issued}}}"#,
                "ab".repeat(32)
            ),
        ),
        moded(
            0,
            format!(r#"{{"platform":"fcm","token":"fcm-registration-token","issued":{issued}}}"#),
        ),
        moded(
            0,
            format!(
                r#"{{"platform":"webpush","endpoint":"https://push.example/push/subscription-1","p256dh":"{p256dh}","auth":"{auth}","senders":[],"issued":{issued}}}"#
            ),
        ),
        moded(1, format!(r#"{{"issued":{issued}}}"#)),
        moded(
            2,
            format!(r#"{{"handle":"{handle}","issued":{issued},"nonce":"{nonce}"}}"#),
        ),
        moded(3, "https://push.example/x"),
        moded(3, "https://[2606:4700::1111]:8443/x?y"),
        moded(3, "http://127.1/x"),
        moded(3, &p256dh),
        moded(
            4,
            node_core::push::sign_request(key, "POST", "/v1/wake", b"{}"),
        ),
    ]
}

/// Bodies, parameters and headers as `kith-mailboxd`'s tests send them,
/// with the `mailboxd_request` target's mode byte.
fn mailboxd_requests() -> Vec<Vec<u8>> {
    let token = DeliveryToken::from_bytes(SecretBytes::new([4; 32]));
    let other = DeliveryToken::from_bytes(SecretBytes::new([3; 32]));
    let mailbox = MailboxKey::from_seed(&SecretBytes::new([5; 32]));
    let challenge = [6; mailbox::CHALLENGE_LEN];
    let id = node_core::wire::to_base32(&[2; 16]);
    vec![
        moded(
            0,
            format!(
                r#"{{"add":["{}"],"remove":["{}"],"replace":true}}"#,
                token.hash(),
                other.hash()
            ),
        ),
        moded(0, format!(r#"{{"add":["{}"]}}"#, token.hash())),
        moded(1, format!(r#"{{"ids":["{id}"]}}"#)),
        moded(2, format!("1700000000000-{id}")),
        moded(3, mailbox.id().to_string()),
        moded(4, "dev-1"),
        moded(5, "3600"),
        moded(
            6,
            mailbox::sign_request(&mailbox, &challenge, "POST", "/v1/mailboxes/x", b"{}"),
        ),
        moded(7, token.bearer()),
    ]
}

/// `POST /v1/names` bodies carrying `records`, and a lookup's handle,
/// with the `named_request` target's mode byte.
fn named_requests(records: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = records
        .iter()
        .map(|r| moded(0, format!(r#"{{"record":"{}"}}"#, BASE64.encode(r))))
        .collect();
    out.push(moded(1, "alice@example.org"));
    out
}
