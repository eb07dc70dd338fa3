//! Call media for kith, beside `node-core` (which knows devices, logs and
//! links but nothing of sound): the datagram format media travels in
//! ([`packet`]) and the adaptive jitter buffer that turns packets arriving
//! late, early, twice or never into one frame every 20 ms ([`jitter`]),
//! Opus voice coding with FEC ([`codec`]) and 48 kHz mono WAV files
//! ([`wav`]); H.264 video through OpenH264 ([`video`]), video frames cut
//! into datagrams and put together again ([`frames`]), and Y4M files
//! ([`y4m`]); echo cancellation for a loudspeaker ([`echo`]).
//!
//! Both are pure: they are given bytes and the time, never read a clock
//! or a socket, so they are tested in virtual time. Real-time paths in the
//! daemon use them without the node or its store.

pub mod codec;
pub mod echo;
pub mod frames;
pub mod h264;
pub mod jitter;
pub mod packet;
pub mod video;
pub mod wav;
pub mod y4m;
