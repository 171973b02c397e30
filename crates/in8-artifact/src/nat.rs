//! The sender's NAT behaviour (RFC 5780 §4.3 mapping, §4.4 filtering), carried in
//! invitations (key 15) and RSVPs (key 9) so the other side can choose a hard-NAT strategy
//! (birthday probing) before the first check.
//!
//! Wire form: `[mapping: uint, filtering: uint]`, each code 0 meaning "not measured"; at
//! least one is non-zero (an unknown behaviour is omitted). The key is odd, so readers that
//! predate it ignore it. A reader that knows the key but not a value in it (a code from a
//! newer writer, another shape) keeps the field as an unknown non-critical extension,
//! exactly as an older reader would: never an error, and the artifact re-encodes byte for
//! byte.

use crate::cbor::{Enc, MAX_EXTENSIONS, Reader};
use crate::error::{Error, Result};

/// RFC 5780 §4.3 mapping behaviour of the sender's NAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NatMapping {
    /// The mapped address equals the local one: no NAT (code 1).
    NoNat,
    /// "Endpoint-Independent Mapping" (code 2).
    EndpointIndependent,
    /// "Address-Dependent Mapping" (code 3).
    AddressDependent,
    /// "Address and Port-Dependent Mapping", the symmetric NAT (code 4).
    AddressAndPortDependent,
}

/// RFC 5780 §4.4 filtering behaviour of the sender's NAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NatFiltering {
    /// "Endpoint-Independent Filtering" (code 1).
    EndpointIndependent,
    /// "Address-Dependent Filtering" (code 2).
    AddressDependent,
    /// "Address and Port-Dependent Filtering" (code 3).
    AddressAndPortDependent,
}

/// What the sender measured about its NAT; `None` parts were not measured (e.g. filtering
/// needs a STUN server with an alternate address). At least one part is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NatBehaviour {
    /// Mapping behaviour, if measured.
    pub mapping: Option<NatMapping>,
    /// Filtering behaviour, if measured.
    pub filtering: Option<NatFiltering>,
}

impl NatMapping {
    fn code(self) -> u64 {
        match self {
            NatMapping::NoNat => 1,
            NatMapping::EndpointIndependent => 2,
            NatMapping::AddressDependent => 3,
            NatMapping::AddressAndPortDependent => 4,
        }
    }

    fn from_code(c: u64) -> Option<Option<Self>> {
        Some(match c {
            0 => None,
            1 => Some(NatMapping::NoNat),
            2 => Some(NatMapping::EndpointIndependent),
            3 => Some(NatMapping::AddressDependent),
            4 => Some(NatMapping::AddressAndPortDependent),
            _ => return None,
        })
    }
}

impl NatFiltering {
    fn code(self) -> u64 {
        match self {
            NatFiltering::EndpointIndependent => 1,
            NatFiltering::AddressDependent => 2,
            NatFiltering::AddressAndPortDependent => 3,
        }
    }

    fn from_code(c: u64) -> Option<Option<Self>> {
        Some(match c {
            0 => None,
            1 => Some(NatFiltering::EndpointIndependent),
            2 => Some(NatFiltering::AddressDependent),
            3 => Some(NatFiltering::AddressAndPortDependent),
            _ => return None,
        })
    }
}

impl NatBehaviour {
    /// Whether anything is known (an artifact carries only a known behaviour).
    pub fn is_known(&self) -> bool {
        self.mapping.is_some() || self.filtering.is_some()
    }

    /// Whether the mapping depends on the destination (a "symmetric" NAT).
    pub fn is_symmetric(&self) -> bool {
        matches!(
            self.mapping,
            Some(NatMapping::AddressDependent | NatMapping::AddressAndPortDependent)
        )
    }

    pub(crate) fn encode(&self, e: &mut Enc) {
        e.array(2)
            .u64(self.mapping.map_or(0, NatMapping::code))
            .u64(self.filtering.map_or(0, NatFiltering::code));
    }

    /// The value of one encoded field, or `None` when this reader does not understand it.
    fn parse(raw: &[u8]) -> Option<Self> {
        let mut r = Reader::new(raw).ok()?;
        if r.array("nat behaviour", 2).ok()? != 2 {
            return None;
        }
        let mapping = NatMapping::from_code(r.u64("nat mapping").ok()?)?;
        let filtering = NatFiltering::from_code(r.u64("nat filtering").ok()?)?;
        r.leave();
        r.finish().ok()?;
        let b = Self { mapping, filtering };
        b.is_known().then_some(b)
    }

    /// Checks a behaviour before it is signed into an artifact with `extensions`: it must
    /// be known (an unknown one is omitted, so every value has one encoding), and no
    /// preserved extension may use its key.
    pub(crate) fn check(nat: &Option<Self>, key: u64, extensions: &[(u64, Vec<u8>)]) -> Result<()> {
        let Some(n) = nat else { return Ok(()) };
        if !n.is_known() {
            return Err(Error::InvalidValue {
                field: "nat behaviour",
                reason: "an unknown behaviour is omitted (None), not encoded",
            });
        }
        if extensions.iter().any(|(k, _)| *k == key) {
            return Err(Error::InvalidValue {
                field: "nat behaviour",
                reason: "an extension field already uses its key",
            });
        }
        Ok(())
    }
}

/// Decodes the NAT behaviour field at `key`: understood values go to `nat`, anything else
/// well formed is kept in `extensions` (as an unknown odd key), never an error.
pub(crate) fn decode_field(
    r: &mut Reader<'_>,
    key: u64,
    nat: &mut Option<NatBehaviour>,
    extensions: &mut Vec<(u64, Vec<u8>)>,
) -> Result<()> {
    let raw = r.skip_raw("nat behaviour")?;
    match NatBehaviour::parse(raw) {
        Some(b) => *nat = Some(b),
        None => {
            if extensions.len() >= MAX_EXTENSIONS {
                return Err(Error::CapacityExceeded {
                    what: "extension fields",
                    limit: MAX_EXTENSIONS,
                });
            }
            extensions.push((key, raw.to_vec()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(b: &NatBehaviour) -> Vec<u8> {
        let mut e = Enc::new();
        b.encode(&mut e);
        e.finish()
    }

    #[test]
    fn codes_round_trip() {
        let maps = [
            None,
            Some(NatMapping::NoNat),
            Some(NatMapping::EndpointIndependent),
            Some(NatMapping::AddressDependent),
            Some(NatMapping::AddressAndPortDependent),
        ];
        let filts = [
            None,
            Some(NatFiltering::EndpointIndependent),
            Some(NatFiltering::AddressDependent),
            Some(NatFiltering::AddressAndPortDependent),
        ];
        for mapping in maps {
            for filtering in filts {
                let b = NatBehaviour { mapping, filtering };
                let parsed = NatBehaviour::parse(&enc(&b));
                if b.is_known() {
                    assert_eq!(parsed, Some(b));
                } else {
                    assert_eq!(parsed, None, "[0, 0] is not a value");
                }
            }
        }
        let sym = NatBehaviour {
            mapping: Some(NatMapping::AddressAndPortDependent),
            filtering: Some(NatFiltering::AddressAndPortDependent),
        };
        assert_eq!(enc(&sym), [0x82, 0x04, 0x03]);
        assert!(sym.is_symmetric());
    }

    #[test]
    fn values_this_reader_does_not_know_are_not_understood() {
        for raw in [
            &[0x82, 0x05, 0x00][..], // mapping code 5
            &[0x82, 0x01, 0x04],     // filtering code 4
            &[0x83, 0x01, 0x01, 0x01],
            &[0x81, 0x01],
            &[0x01],
            &[0x62, 0x68, 0x69],
            &[0x82, 0x18, 0x01, 0x01], // non-shortest head
        ] {
            assert_eq!(NatBehaviour::parse(raw), None, "{raw:02x?}");
        }
    }
}
