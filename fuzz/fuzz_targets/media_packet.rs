//! Media datagrams (`kith_media::packet::Packet`): what the other device
//! of a call sends many times a second.
#![no_main]

use kith_media::packet::{HEADER, MAX_PAYLOAD, Packet, Report};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::decode(data) else {
        return;
    };
    assert!(!packet.payload.is_empty() && packet.payload.len() <= MAX_PAYLOAD);
    assert_eq!(packet.encode().as_deref(), Ok(data));
    assert_eq!(data.len(), HEADER + packet.payload.len());
    if let Ok(report) = Report::from_packet(&packet) {
        assert!(report.loss_permille <= 1000);
        let again = report.packet(packet.seq).encode().expect("a report encodes");
        let again = Packet::decode(&again).expect("and decodes");
        assert_eq!(Report::from_packet(&again), Ok(report));
    }
});
