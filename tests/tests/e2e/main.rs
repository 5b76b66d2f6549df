//! The end-to-end tests, as one test binary: the real `hearth` program and relay, driven
//! as people and operators would. One binary links the workspace once instead of once per
//! file; each module is one area of behaviour.

mod admission;
mod adversarial;
mod caught_relay;
mod charts;
mod consent;
mod devices;
mod follow_through;
mod handshake;
mod hostile_partner;
mod hostile_relay;
mod offline;
mod operability;
mod padding;
mod pairing_cli;
mod relay_crash;
mod relayurl;
mod reminders;
mod restore;
mod ritual;
mod sync;
mod sync_property;
mod terminal;
mod tls;
mod unlock;
mod upgrade;
