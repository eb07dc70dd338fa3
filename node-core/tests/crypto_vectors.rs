//! Known-answer tests for `node_core::crypto` against published vectors, and
//! interoperability checks against an independent implementation (`dryoc`,
//! pure Rust) for the constructions that are randomised and so have no fixed
//! vectors (sealed boxes, secretstream).
//!
//! Every expected value below is copied from the source named above it; none
//! was produced by the code under test.

use data_encoding::{BASE64_NOPAD, HEXLOWER_PERMISSIVE};
use dryoc::classic::{
    crypto_box, crypto_pwhash, crypto_secretstream_xchacha20poly1305 as dss, crypto_sign,
};
use dryoc::constants::{
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_FINAL as DRYOC_TAG_FINAL,
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_MESSAGE as DRYOC_TAG_MESSAGE,
};
use node_core::crypto::*;

fn hex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    HEXLOWER_PERMISSIVE
        .decode(clean.as_bytes())
        .expect("valid hex in test vector")
}

fn arr<const N: usize>(s: &str) -> [u8; N] {
    hex(s).try_into().expect("test vector has the right length")
}

// ---------------------------------------------------------------- Ed25519 --
// RFC 8032, section 7.1 "Test Vectors for Ed25519":
// https://www.rfc-editor.org/rfc/rfc8032#section-7.1
// (SECRET KEY is the 32-byte seed.)

struct Ed25519Vector {
    name: &'static str,
    seed: &'static str,
    public: &'static str,
    msg: &'static str,
    sig: &'static str,
}

const RFC8032: &[Ed25519Vector] = &[
    Ed25519Vector {
        name: "TEST 1",
        seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        public: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        msg: "",
        sig: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
              5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    },
    Ed25519Vector {
        name: "TEST 2",
        seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        public: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        msg: "72",
        sig: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
              085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    },
    Ed25519Vector {
        name: "TEST 3",
        seed: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        public: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        msg: "af82",
        sig: "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac\
              18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    },
    Ed25519Vector {
        name: "TEST 1024",
        seed: "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        public: "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        msg: "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98\
              fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8\
              79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d\
              658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc\
              1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe\
              ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e\
              06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef\
              efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7\
              aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1\
              85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2\
              d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24\
              554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270\
              88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc\
              2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07\
              07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba\
              b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a\
              ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e\
              c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7\
              51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c\
              42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8\
              ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df\
              f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08\
              d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649\
              de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4\
              88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3\
              2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e\
              6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f\
              b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5\
              0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1\
              369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d\
              b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c\
              0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
        sig: "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350\
              aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    },
    Ed25519Vector {
        name: "TEST SHA(abc)",
        seed: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        public: "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        msg: "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
              2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        sig: "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589\
              09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    },
];

#[test]
fn ed25519_rfc8032_vectors() {
    for v in RFC8032 {
        let key = SigningKey::from_seed(&SecretBytes::new(arr(v.seed)));
        let vk = key.verifying_key();
        assert_eq!(
            vk.as_bytes(),
            &arr::<32>(v.public),
            "{}: public key",
            v.name
        );
        let msg = hex(v.msg);
        let sig = key.sign_raw(&msg);
        assert_eq!(sig.as_bytes(), &arr::<64>(v.sig), "{}: signature", v.name);
        let published = VerifyingKey::from_bytes(arr(v.public));
        assert_eq!(
            published.verify_raw(&msg, &Signature::from_bytes(arr(v.sig))),
            Ok(()),
            "{}",
            v.name
        );
    }
}

#[test]
fn ed25519_any_flipped_bit_fails() {
    let v = &RFC8032[2];
    let vk = VerifyingKey::from_bytes(arr(v.public));
    let msg = hex(v.msg);
    let sig: [u8; 64] = arr(v.sig);
    for bit in 0..512 {
        let mut bad = sig;
        bad[bit / 8] ^= 1 << (bit % 8);
        let res = vk.verify_raw(&msg, &Signature::from_bytes(bad));
        assert_eq!(res, Err(SignatureError::Invalid), "signature bit {bit}");
    }
    for bit in 0..msg.len() * 8 {
        let mut bad = msg.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let res = vk.verify_raw(&bad, &Signature::from_bytes(sig));
        assert_eq!(res, Err(SignatureError::Invalid), "message bit {bit}");
    }
    let mut key = *vk.as_bytes();
    key[0] ^= 1;
    let res = VerifyingKey::from_bytes(key).verify_raw(&msg, &Signature::from_bytes(sig));
    assert_eq!(res, Err(SignatureError::Invalid), "public key bit 0");
}

// ---------------------------------------------------------------- BLAKE2b --

#[test]
fn blake2b_512_rfc7693_abc() {
    // RFC 7693, Appendix A "Example of BLAKE2b Computation":
    // https://www.rfc-editor.org/rfc/rfc7693#appendix-A
    let expected = hex("BA 80 A5 3F 98 1C 4D 0D 6A 27 97 B6 9F 12 F6 E9
         4C 21 2F 14 68 5A C4 B7 4B 12 BB 6F DB FF A2 D1
         7D 87 C5 39 2A AB 79 2D C2 52 D5 DE 45 33 CC 95
         18 D3 8A A8 DB F1 92 5A B9 23 86 ED D4 00 99 23");
    assert_eq!(blake2b(b"abc", None, 64), expected);
}

#[test]
fn blake2b_keyed_reference_kat() {
    // BLAKE2 reference package, github.com/BLAKE2/BLAKE2
    // testvectors/blake2b-kat.txt (same entries in blake2b-test.txt): keyed
    // BLAKE2b-512, key = 00 01 .. 3f, input = 00 01 .. (n-1).
    let key: Vec<u8> = (0u8..64).collect();
    let kat = [
        "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786\
         b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568",
        "961f6dd1e4dd30f63901690c512e78e4b45e4742ed197c3c5e45c549fd25f2e4\
         187b0bc9fe30492b16b0d0bc4ef9b0f34c7003fac09a5ef1532e69430234cebd",
        "da2cfbe2d8409a0f38026113884f84b50156371ae304c4430173d08a99d9fb1b\
         983164a3770706d537f49e0c916d9f32b95cc37a95b99d857436f0232c88a965",
        "33d0825dddf7ada99b0e7e307104ad07ca9cfd9692214f1561356315e784f3e5\
         a17e364ae9dbb14cb2036df932b77f4b292761365fb328de7afdc6d8998f5fc1",
    ];
    for (n, expected) in kat.iter().enumerate() {
        let input: Vec<u8> = (0..n as u8).collect();
        assert_eq!(
            blake2b(&input, Some(&key), 64),
            hex(expected),
            "input length {n}"
        );
    }
}

// ------------------------------------------------------ XChaCha20-Poly1305 --

#[test]
fn xchacha20poly1305_draft_a31() {
    // draft-irtf-cfrg-xchacha-03, Appendix A.3.1 (AEAD_XChaCha20_Poly1305
    // test vector): https://datatracker.ietf.org/doc/html/draft-irtf-cfrg-xchacha-03#appendix-A.3.1
    let key = AeadKey::from_bytes(SecretBytes::new(arr(
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
    )));
    let nonce: [u8; AEAD_NONCE_LEN] = arr("404142434445464748494a4b4c4d4e4f5051525354555657");
    let ad = hex("50515253c0c1c2c3c4c5c6c7");
    let plaintext: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you \
        only one tip for the future, sunscreen would be it.";
    let ciphertext = hex(
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb\
         731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452\
         2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9\
         21f9664c97637da9768812f615c68b13b52e",
    );
    let tag = hex("c0875924c1c7987947deafd8780acf49");

    let sealed = aead_encrypt_with_nonce(&key, &nonce, &ad, plaintext);
    assert_eq!(sealed[..plaintext.len()], ciphertext[..]);
    assert_eq!(sealed[plaintext.len()..], tag[..]);

    let opened = aead_decrypt_with_nonce(&key, &nonce, &ad, &sealed).expect("vector opens");
    assert_eq!(opened, plaintext);

    // aead_open takes the same thing with the nonce in front.
    let framed = [nonce.as_slice(), &sealed].concat();
    assert_eq!(
        aead_open(&key, &ad, &framed).expect("framed vector opens"),
        plaintext
    );
    let mut bad = sealed.clone();
    bad[0] ^= 0x80;
    assert!(matches!(
        aead_decrypt_with_nonce(&key, &nonce, &ad, &bad),
        Err(CryptoError::DecryptFailed)
    ));
}

// ---------------------------------------------------------------- argon2id --

#[test]
fn argon2id_libsodium_vector() {
    // libsodium test/default/pwhash_argon2id.c, tv3() entry [2]; its .exp file
    // reports failures only for entries [0], [1] and [3], so [2] verifies:
    //   password "", "$argon2id$v=19$m=4882,t=2,p=1$bA81arsiXysd3WbTRzmEOw
    //   $Nm8QBM+7RH1DXo9rvp5cwKEOOOfD2g6JuxlXihoNcpE"
    // m is in KiB; libsodium's memlimit is in bytes.
    // (The argon2 reference test.c vectors use the 8-byte salt "somesalt",
    // which libsodium's fixed 16-byte-salt API cannot take.)
    let salt: [u8; ARGON2_SALT_LEN] = BASE64_NOPAD
        .decode(b"bA81arsiXysd3WbTRzmEOw")
        .expect("base64 salt")
        .try_into()
        .expect("16-byte salt");
    let expected = BASE64_NOPAD
        .decode(b"Nm8QBM+7RH1DXo9rvp5cwKEOOOfD2g6JuxlXihoNcpE")
        .expect("b64");
    let params = Argon2Params {
        ops: 2,
        mem_bytes: 4882 * 1024,
    };
    let key = argon2id(b"", &salt, params).expect("argon2id");
    assert_eq!(key.as_bytes().as_slice(), expected.as_slice());
}

#[test]
fn argon2id_agrees_with_dryoc() {
    let salt: [u8; ARGON2_SALT_LEN] = *b">A 16-bytes salt";
    let params = Argon2Params {
        ops: 3,
        mem_bytes: 1 << 20,
    };
    let ours = argon2id(b"Correct Horse Battery Staple", &salt, params).expect("argon2id");
    let mut theirs = [0u8; 32];
    crypto_pwhash::crypto_pwhash(
        &mut theirs,
        b"Correct Horse Battery Staple",
        &salt,
        params.ops,
        params.mem_bytes,
        crypto_pwhash::PasswordHashAlgorithm::Argon2id13,
    )
    .expect("dryoc argon2id");
    assert_eq!(ours.as_bytes(), &theirs);
}

// ------------------------------------------------------------- sealed box --

#[test]
fn sealed_box_interoperates_with_dryoc() {
    // Ours -> dryoc.
    let (dryoc_pk, dryoc_sk) = crypto_box::crypto_box_keypair();
    let to = BoxPublicKey::from_bytes(dryoc_pk).expect("dryoc public key");
    let sealed = seal(&to, b"hello dryoc");
    let mut opened = vec![0u8; sealed.len() - SEAL_OVERHEAD];
    crypto_box::crypto_box_seal_open(&mut opened, &sealed, &dryoc_pk, &dryoc_sk)
        .expect("dryoc opens our sealed box");
    assert_eq!(opened, b"hello dryoc");

    // dryoc -> ours.
    let ours = BoxSecretKey::generate();
    let msg = b"hello libsodium";
    let mut theirs = vec![0u8; msg.len() + SEAL_OVERHEAD];
    crypto_box::crypto_box_seal(&mut theirs, msg, ours.public_key().as_bytes())
        .expect("dryoc seals");
    assert_eq!(
        open_sealed(&ours, &theirs).expect("we open dryoc's box"),
        msg
    );
}

#[test]
fn sealed_box_tamper_and_truncation_fail() {
    let sk = BoxSecretKey::generate();
    let sealed = seal(&sk.public_key(), b"payload");
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        assert!(
            matches!(open_sealed(&sk, &bad), Err(CryptoError::DecryptFailed)),
            "byte {i}"
        );
    }
    assert!(open_sealed(&sk, &sealed[..sealed.len() - 1]).is_err());
    assert!(open_sealed(&sk, &[]).is_err());
}

#[test]
fn converted_identity_keys_seal_and_open() {
    let id = SigningKey::generate();
    let to = id.verifying_key().to_box_public().expect("valid point");
    let sealed = seal(&to, b"to my identity");
    assert_eq!(
        open_sealed(&id.to_box_secret(), &sealed).expect("opens"),
        b"to my identity"
    );
}

// ------------------------------------------------------------ secretstream --

#[test]
fn secretstream_interoperates_with_dryoc() {
    let key = StreamKey::generate();
    let dkey: [u8; 32] = *key.as_secret().as_bytes();

    // Ours -> dryoc.
    let (mut enc, header) = StreamEncryptor::new(&key);
    let chunks: [&[u8]; 3] = [b"first", b"second", b"last"];
    let mut state = dss::State::new();
    dss::crypto_secretstream_xchacha20poly1305_init_pull(&mut state, &header, &dkey);
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i == chunks.len() - 1;
        let ct = enc.push(chunk, last);
        let mut out = vec![0u8; ct.len() - STREAM_ABYTES];
        let mut tag = 0u8;
        dss::crypto_secretstream_xchacha20poly1305_pull(&mut state, &mut out, &mut tag, &ct, None)
            .expect("dryoc pulls our chunk");
        assert_eq!(out, *chunk);
        assert_eq!(
            tag,
            if last {
                DRYOC_TAG_FINAL
            } else {
                DRYOC_TAG_MESSAGE
            }
        );
    }

    // dryoc -> ours.
    let mut state = dss::State::new();
    let mut header = [0u8; STREAM_HEADER_LEN];
    dss::crypto_secretstream_xchacha20poly1305_init_push(&mut state, &mut header, &dkey);
    let mut dec = StreamDecryptor::new(&key, &header).expect("header");
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i == chunks.len() - 1;
        let tag = if last {
            DRYOC_TAG_FINAL
        } else {
            DRYOC_TAG_MESSAGE
        };
        let mut ct = vec![0u8; chunk.len() + STREAM_ABYTES];
        dss::crypto_secretstream_xchacha20poly1305_push(&mut state, &mut ct, chunk, None, tag)
            .expect("dryoc pushes");
        assert_eq!(
            dec.pull(&ct).expect("we pull dryoc's chunk"),
            (chunk.to_vec(), last)
        );
    }
}

#[test]
fn secretstream_truncation_is_detectable() {
    let key = StreamKey::generate();
    let (mut enc, header) = StreamEncryptor::new(&key);
    let cts = [
        enc.push(b"a", false),
        enc.push(b"b", false),
        enc.push(b"c", true),
    ];

    // Dropping the final chunk: every remaining chunk opens, none is final.
    let mut dec = StreamDecryptor::new(&key, &header).expect("header");
    for ct in &cts[..2] {
        assert!(!dec.pull(ct).expect("chunk").1);
    }
    assert!(
        !dec.is_finished(),
        "a stream missing its final chunk must not look finished"
    );

    // Dropping a middle chunk, or tampering, fails at once.
    let mut dec = StreamDecryptor::new(&key, &header).expect("header");
    dec.pull(&cts[0]).expect("first");
    assert!(matches!(dec.pull(&cts[2]), Err(CryptoError::DecryptFailed)));

    let mut dec = StreamDecryptor::new(&key, &header).expect("header");
    let mut bad = cts[0].clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(dec.pull(&bad), Err(CryptoError::DecryptFailed)));

    // Another key, or another stream's header, cannot read it.
    let mut dec = StreamDecryptor::new(&StreamKey::generate(), &header).expect("header");
    assert!(matches!(dec.pull(&cts[0]), Err(CryptoError::DecryptFailed)));
    let (_, other_header) = StreamEncryptor::new(&key);
    let mut dec = StreamDecryptor::new(&key, &other_header).expect("header");
    assert!(matches!(dec.pull(&cts[0]), Err(CryptoError::DecryptFailed)));
}

// ----------------------------------------------------------------- Ed25519 --

#[test]
fn ed25519_interoperates_with_dryoc() {
    let key = SigningKey::generate();
    let msg = b"signed by libsodium";
    let sig = key.sign(SignDomain::EVENT, msg);
    let signed_bytes = [SignDomain::EVENT.as_str().as_bytes(), b"\0", msg].concat();
    crypto_sign::crypto_sign_verify_detached(
        sig.as_bytes(),
        &signed_bytes,
        key.verifying_key().as_bytes(),
    )
    .expect("dryoc verifies our domain-separated signature");

    let (dryoc_pk, dryoc_sk) = crypto_sign::crypto_sign_keypair();
    let mut dryoc_sig = [0u8; 64];
    crypto_sign::crypto_sign_detached(&mut dryoc_sig, &signed_bytes, &dryoc_sk)
        .expect("dryoc signs");
    let vk = VerifyingKey::from_bytes(dryoc_pk);
    assert_eq!(
        vk.verify(SignDomain::EVENT, msg, &Signature::from_bytes(dryoc_sig)),
        Ok(())
    );
    assert_eq!(
        vk.verify(SignDomain::CARD, msg, &Signature::from_bytes(dryoc_sig)),
        Err(SignatureError::Invalid)
    );
}

// -------------------------------------------------------- constant time --

#[test]
fn ct_eq_and_ct_bytes() {
    assert!(ct_eq(b"", b""));
    assert!(ct_eq(b"same bytes", b"same bytes"));
    assert!(!ct_eq(b"same bytes", b"same bytez"));
    assert!(!ct_eq(b"short", b"shorter"));

    let tag = CtBytes::from([0xabu8; 16]);
    assert_eq!(tag, CtBytes::from([0xabu8; 16]));
    let mut other = [0xabu8; 16];
    other[15] = 0;
    assert_ne!(tag, CtBytes::from(other));
    assert_eq!(tag.as_bytes(), &[0xabu8; 16]);
}
