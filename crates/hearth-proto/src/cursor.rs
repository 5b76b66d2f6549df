//! A bounds-checked reader for the hand-written canonical layouts of envelopes and ACL
//! records. Every read returns an error instead of panicking when the input runs short,
//! which is what lets those decoders take any bytes from the network.

use crate::ProtoError;

/// Reads fixed-width big-endian fields from a byte slice, front to back.
pub(crate) struct Cursor<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    /// A reader over `bytes`; `what` names the thing being decoded in errors.
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { rest: bytes, what }
    }

    pub(crate) fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], ProtoError> {
        if self.rest.len() < n {
            return Err(ProtoError::malformed(
                self.what,
                format!("{field} needs {n} bytes, {} left", self.rest.len()),
            ));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], ProtoError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &str) -> Result<u8, ProtoError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u32(&mut self, field: &str) -> Result<u32, ProtoError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &str) -> Result<u64, ProtoError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Succeeds only if every byte was consumed: one value has exactly one encoding.
    pub(crate) fn finish(self) -> Result<(), ProtoError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::malformed(
                self.what,
                format!("{} trailing bytes", self.rest.len()),
            ))
        }
    }
}
