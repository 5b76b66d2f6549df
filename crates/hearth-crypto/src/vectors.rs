//! Fixed vectors: bytes sealed by the first release of each format, checked in so that no
//! later change can stop profiles, envelopes, invite codes, invite lockboxes or sealed
//! check-in answers made by an earlier release from opening. A failure here means a format changed: read the old one
//! beside the new, never edit a vector to make it pass.
//!
//! Each vector was made once with the code of its time (random nonces, fixed keys); where
//! the bytes are fully determined by key, nonce and input, the tests also rebuild them with `aead.rs`'s framing.

use hearth_proto::{Envelope, EnvelopeHeader, EnvelopeKind, SpaceId};

use crate::aead::{ENVELOPE as ENVELOPE_CONTENT, INVITE_LOCKBOX as LOCKBOX, STORAGE, SymmetricKey};
use crate::{DeviceKeys, EpochKey, InviteCode, StorageKey, envelope};

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).expect("vectors are hex")
}

/// The storage key of every storage vector: bytes 0, 1, …, 31.
fn storage_key() -> StorageKey {
    StorageKey::from_bytes(std::array::from_fn(|i| i as u8))
}

/// The epoch key K[0] of the vectors; K[1] is all 0x44.
const EPOCH_KEY: [u8; 32] = [0x33; 32];

/// A document snapshot chunk as the profile store seals it.
const STORAGE_DOMAIN: &[u8] = b"doc/00112233445566778899aabbccddeeff/snapshot";
const STORAGE_PLAINTEXT: &[u8] = b"we went for a walk";
const STORAGE_SEALED: &str = "019d04153e7ba4ebc2da57afca5220f5cdbacb0449452266858fe85e15e2fd466a57d28b4f0f540d94c66d0b6e31fbf2d343509c9a8b0d8ce623c4";

/// An epoch key as the profile store keeps it.
const STORED_EPOCH_KEY_DOMAIN: &[u8] = b"epoch-key/3";
const STORED_EPOCH_KEY: &str = "01848843b753108cf9796e8abfe1bf42ef847a917076c594cad6c6db799737ddac79a300df4dba080ff8df5f199d4e27460b2367c2bd8d96ba5eb04455c422c5c6654befe519860a05";

/// The device that signed the envelope vector: Ed25519 seed all 7s and this age identity.
const DEVICE_AGE: &str =
    "AGE-SECRET-KEY-144N6WZKZK850DCVA7S7DK2TWC86SC4V5XKWUAYDYN22Z5D95S8HSZGJWC3";
/// A Changes envelope of space 04…04, epoch 2, counter 7, under [`EPOCH_KEY`].
const ENVELOPE_PLAINTEXT: &[u8] = b"a new appreciation";
const ENVELOPE: &str = "01000404040404040404040404040404040400000002ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c00000000000000070f518107338fe742f4e1b5bb8a44f95b6b8148711c64cacf00000022be4f2665247797f59427f181eb00a3e716dc416fb3e56a4a1d0e975e47a3ba7f8e7732c1b6f92d2a7754b64a4d9c5ba0c469fc6e5abc89901b95b5e4a4f9e66fb46473f10fb8dfbf211b51ae0c3553b0b84686b3e3914c2fbc83dc193bb62bdbf402";

/// An invite to space 05…05 with the secret all 0x5e.
const INVITE_CODE: &str = "hearth1.d3NzOi8vcmVsYXkuZXhhbXBsZS5vcmcvdjEvc3luYw.05050505050505050505050505050505.Xl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl4.1dd1aacf";
const INVITE_ID: &str = "f4d3c400ddc0e438b80a58a81242a2a8db6665550009beaadaa88386a6fb6162";
/// Its lockbox at epoch 1: K[0], K[1] and the person id "ab12".
const INVITE_LOCKBOX: &str = "1ed36ddde2168b68cd9d95e6acb45d5d8baa2fe4b31307d8fecefc83fc16825b1f329a337b9d478551434d8ed2a2f8ac522bd32b50194f94ba3f1c2fe308630887f30b85e826e980f5d3ba3eb6d90e376c9112e321be511cdfa3b6ad057fe305cd9c8e7ee01d5e1f35c4c9e3e8";

#[test]
fn a_profile_value_sealed_by_the_first_release_still_opens_and_is_rebuilt_byte_for_byte() {
    let sealed = unhex(STORAGE_SEALED);
    let opened = storage_key().open(STORAGE_DOMAIN, &sealed).unwrap();
    assert_eq!(&opened[..], STORAGE_PLAINTEXT);

    // version 1 ‖ nonce ‖ ciphertext, associated data "hearth/storage/v1" ‖ 0 ‖ domain
    let rebuilt = SymmetricKey::from_bytes(*storage_key().as_bytes()).seal_for_vector(
        &STORAGE,
        &sealed[1..25],
        STORAGE_DOMAIN,
        STORAGE_PLAINTEXT,
    );
    assert_eq!(rebuilt, sealed);
}

#[test]
fn an_epoch_key_stored_by_the_first_release_still_opens() {
    let key = storage_key()
        .open_epoch_key(STORED_EPOCH_KEY_DOMAIN, &unhex(STORED_EPOCH_KEY))
        .unwrap();
    assert_eq!(key.as_bytes(), &EPOCH_KEY);
}

#[test]
fn an_envelope_sealed_by_the_first_release_still_verifies_opens_and_is_rebuilt_byte_for_byte() {
    let device = DeviceKeys::from_parts(&[7; 32], DEVICE_AGE).unwrap();
    let space = SpaceId::from_bytes([4; 16]);
    let bytes = unhex(ENVELOPE);
    let env = Envelope::decode(&bytes).unwrap();
    assert_eq!(env.header().author, device.device_id());
    let key = EpochKey::from_bytes(EPOCH_KEY);
    let opened = envelope::open(&env, &space, 2, &key).unwrap();
    assert_eq!(&opened[..], ENVELOPE_PLAINTEXT);

    // The content key is BLAKE3 derive_key("hearth 2026 envelope content key v1", K[e]);
    // the associated data is the header's canonical bytes; the signature is deterministic.
    let header = EnvelopeHeader {
        kind: EnvelopeKind::Changes,
        space,
        epoch: 2,
        author: device.device_id(),
        counter: 7,
    };
    let content_key = key.content_key_for_vector();
    assert_eq!(
        content_key.as_bytes(),
        &blake3::derive_key("hearth 2026 envelope content key v1", &EPOCH_KEY)
    );
    let ciphertext = content_key.encrypt_for_vector(
        &ENVELOPE_CONTENT,
        env.nonce(),
        &header.associated_data(),
        ENVELOPE_PLAINTEXT,
    );
    assert_eq!(ciphertext, env.ciphertext());
    let signature = device.sign(&Envelope::signed_message(&header, env.nonce(), &ciphertext));
    let rebuilt = Envelope::from_parts(header, *env.nonce(), ciphertext, signature);
    assert_eq!(rebuilt.encode(), bytes);
}

#[test]
fn an_invite_code_from_the_first_release_still_reads_as_the_same_invite() {
    let code: InviteCode = INVITE_CODE.parse().unwrap();
    assert_eq!(code.relay(), "wss://relay.example.org/v1/sync");
    assert_eq!(code.space(), [5; 16]);
    assert_eq!(hex::encode(code.keys().invite_id()), INVITE_ID);
    assert_eq!(
        code.to_string(),
        INVITE_CODE,
        "the code prints as it was shared"
    );
}

#[test]
fn an_invite_lockbox_from_the_first_release_still_opens_and_is_rebuilt_byte_for_byte() {
    let code: InviteCode = INVITE_CODE.parse().unwrap();
    let blob = unhex(INVITE_LOCKBOX);
    let (keys, person) = code.keys().open_lockbox(&blob, &[5; 16], 1).unwrap();
    let keys: Vec<[u8; 32]> = keys.iter().map(|k| *k.as_bytes()).collect();
    assert_eq!(keys, [EPOCH_KEY, [0x44; 32]]);
    assert_eq!(person.as_deref(), Some("ab12"));

    // nonce ‖ ciphertext (no version byte), under BLAKE3 derive_key("hearth 2026 invite
    // lockbox key v1", secret), associated data "hearth invite lockbox v1" ‖ space ‖ epoch.
    let lockbox_key = SymmetricKey::from_bytes(blake3::derive_key(
        "hearth 2026 invite lockbox key v1",
        &[0x5e; 32],
    ));
    let context = [&[5; 16][..], &1u32.to_be_bytes()].concat();
    let plaintext = [&[4u8][..], b"ab12", &EPOCH_KEY, &[0x44; 32]].concat();
    let rebuilt = lockbox_key.seal_for_vector(&LOCKBOX, &blob[..24], &context, &plaintext);
    assert_eq!(rebuilt, blob);
}

/// Answers sealed by the first release with sealing (then in hearth-doc), taken apart from
/// the submission the document stored: hearth-doc's records tests keep the whole record.
const ANSWERS_WEEK: &str = "2026-W47";
const ANSWERS_PERSON: &str = "0123456789abcdef0123456789abcdef";
const ANSWERS_PLAINTEXT: &[u8] = b"{\"feeling\":8,\"need\":[\"time\"]}";
const ANSWERS_KEY: &str = "4932375b5c136ba4ef33752c3134ef3c0b4f5d758186b16c0af894390cc342ee";
const ANSWERS_COMMITMENT: &str = "e6676171d7b1ecbd328cefc53cc756a397ce2cd04c4d658b4e1a3f7c962f5d6c";
const ANSWERS_NONCE: &str = "0661ae68c1c9461606e6d7416a6a03fbb88c04bbd97e851a";
const ANSWERS_CIPHERTEXT: &str =
    "15350af9a94732bf59848876143632b898959090dc30a8ab29689223e26c7f7ca2cbb1b2a65eaf700d7ef05ca7";

#[test]
fn answers_sealed_by_the_first_release_still_open_and_are_rebuilt_byte_for_byte() {
    use crate::answers::{self, Commitment, SealKey, Sealed};

    let key = SealKey::from_bytes(unhex(ANSWERS_KEY).try_into().unwrap());
    let sealed = Sealed {
        nonce: unhex(ANSWERS_NONCE).try_into().unwrap(),
        ciphertext: unhex(ANSWERS_CIPHERTEXT),
        commitment: Commitment::parse(ANSWERS_COMMITMENT).unwrap(),
    };
    assert_eq!(
        answers::open(ANSWERS_WEEK, ANSWERS_PERSON, &sealed, &key).unwrap(),
        ANSWERS_PLAINTEXT
    );
    // XChaCha20-Poly1305 under the key itself, associated data "hearth sealed check-in
    // answers v1" ‖ len ‖ week ‖ len ‖ person; the commitment a BLAKE3 derive_key hash of
    // week, person, key, nonce and ciphertext.
    let rebuilt = key.seal_for_vector(
        ANSWERS_WEEK,
        ANSWERS_PERSON,
        &sealed.nonce,
        ANSWERS_PLAINTEXT,
    );
    assert_eq!(rebuilt, sealed);
}

/// A Changes envelope of the first release with padding: space 04…04, epoch 2, counter 8,
/// under [`EPOCH_KEY`], signed by the device of [`DEVICE_AGE`], nonce all 0x55. Its
/// plaintext is padded to 1,024 bytes: `01 ‖ u32 length ‖ text ‖ zeros`.
const PADDED_PLAINTEXT: &[u8] = b"a padded appreciation";
const PADDED_ENVELOPE: &str = concat!(
    "01000404040404040404040404040404040400000002ea4a6c63e29c520abef5507b132ec5f9954776aebebe",
    "7b92421eea691446d22c00000000000000085555555555555555555555555555555555555555555555550000",
    "0410281fa435779a0a07cfb6a8eeba0e0247c6057121bd25b544633021a1d37c336a8b554f6bd3c02ca1c62e",
    "c7862fcbd80f9602f7eb712aff2734efa21d9de5c942ae65f34cd6e26bae13230cb4699286237220274b6eb2",
    "baf7dc9141ac2a365f56ef274477fa2f90755f2c0db6ae3730cecdcda5d93b561bacd0c0affcb55e216fbcac",
    "65d66114dde252e49be6cbfbe2f10b1b6551c2c6083751baa7a74c9d7b4643edf8f0e0ca238fc328f76e02f5",
    "4390fff052bca473c95553c4d759466175cdd9d933baf5dedbc6e0e6763b4d5edfb12cba5d9756c4e9bf7347",
    "167057e3091773725822b6ce3609d460a9c633f3db2af42ed8db7fb6c6daa62c3b8b5933260f16b817d7192a",
    "cb0631a2a72c8ca664821f5caaa18fa6cf5dfbfa3b36b6686035028e39d02dd68e0980e3a7c7f23009ffecc1",
    "09a813756d1e11c0505842136b1dd0dd943894996197f0c3671a1e68a3cae77fdb0b0723662815ab0a0d56b9",
    "746437cce664be2c1e1ef00328b83717f5c675541e68da68843aee5ecfca04d58a6cd517e587a4aafda0e279",
    "08563aa3b6a720e5dec80306906ceadfe7daab0bcf16087cdcddd0f26820edb4c52989c6493d6d00d970341c",
    "aa19300b56ba902571f9a5fe87197dfb55469d5e9f8963b4c415012fde640557928f2239f346a0a8ad6a88ae",
    "a3d7deb3d505454fb6ccc0bf629a9e1acf1528379e52bfff55ee1346116c9a6977498d67741ec0423b924d0f",
    "56db9e302afdeea75b07a8c805cb90d008b01cb4a26ad23c7f599b1f9df6b0c62ac55644c7125d0a51cfda6e",
    "e73f0ed316e512df4cb413aaa087045f238b2e85a9b9bc4bf22755bcea8e2390fc544d4baba28b728d066019",
    "89c3f9a371fc5bdeb8f481f40e6ab1e8b5cd591635b8ec6d35588e165e099cbec8e81851e83d144708190caf",
    "8261fd293e20c20baddb8fb6c0367def211c1b59e65330a162c84a65310ab0c29edd7e83131794fa9ad22c08",
    "fb0c4686be5dca2dc975c6159fa25051705a039e1098f3a06830bfa043c56ffe0ede5f187dbf541cfa73a72a",
    "831549175a31a2559c9b5e825ad37d71e55379e8210637acdc5a0d06808f24b5e70d95b65cf3e394b27006a9",
    "ee6b937c37d9eb561de6f9c08a65a5ffe952fc547ec40ad65a91b655e3502051ba019310d8e66568aaa4bb8a",
    "e5dfd5e3c5c93ccf88f41367b8573c527c324abb1419fe2d60667c54432797b9c184381b4892d2ae5aa1d0b1",
    "1bb58f5903219a197397772c8f823dc9ee34662f5ac272373f7e7a0bc7c8132786662128547fab72b62cdfcf",
    "7efec269851a1ffdd16c96a42813622a0d7ceb1dc8b65b75ea786e78f7eacf76a814968b4ef22f20da735423",
    "18fc2a6f1494af1041149cf2af642f9d81e64371c6cdeaca891d876e0e340803c28570fd7408fd77f2545cef",
    "67947f2a2d1bed25a8759c987f2932e246c9d655c285f173ed88cfb5a5367f6d2cecb6823796ef5fcdf2a1bb",
    "5e02901d45093e8bfec21f3dfb765e3d885a8bf16182673aebe33358604af3e91ef12a7c45b1791790b20052",
    "abf9485a0b04",
);

#[test]
fn a_padded_envelope_from_the_first_release_with_padding_opens_and_is_rebuilt_byte_for_byte() {
    let device = DeviceKeys::from_parts(&[7; 32], DEVICE_AGE).unwrap();
    let space = SpaceId::from_bytes([4; 16]);
    let key = EpochKey::from_bytes(EPOCH_KEY);
    let header = EnvelopeHeader {
        kind: EnvelopeKind::Changes,
        space,
        epoch: 2,
        author: device.device_id(),
        counter: 8,
    };
    // The padded plaintext, written out by hand from docs/protocol.md.
    let mut padded = vec![0x01];
    padded.extend_from_slice(&(PADDED_PLAINTEXT.len() as u32).to_be_bytes());
    padded.extend_from_slice(PADDED_PLAINTEXT);
    padded.resize(1024, 0);
    let nonce = [0x55; 24];
    let ciphertext = key.content_key_for_vector().encrypt_for_vector(
        &ENVELOPE_CONTENT,
        &nonce,
        &header.associated_data(),
        &padded,
    );
    let signature = device.sign(&Envelope::signed_message(&header, &nonce, &ciphertext));
    let rebuilt = Envelope::from_parts(header, nonce, ciphertext, signature).encode();
    assert_eq!(hex::encode(&rebuilt), PADDED_ENVELOPE);

    let env = Envelope::decode(&unhex(PADDED_ENVELOPE)).unwrap();
    let opened = envelope::open(&env, &space, 2, &key).unwrap();
    assert_eq!(&opened[..], PADDED_PLAINTEXT);
    assert_eq!(
        crate::padding::pad(PADDED_PLAINTEXT).unwrap()[..],
        padded[..]
    );
}
