//! QR codes for artifacts (feature `qr`, on by default), via the `qrcode` crate.
//!
//! The QR payload is the base32 form (`IN8:` + uppercase RFC 4648 base32): every character of
//! it is in QR's alphanumeric set, which packs 11 bits per 2 characters instead of 16 in byte
//! mode. Error correction level M (about 15 % of the code may be damaged).

use qrcode::{EcLevel, QrCode, Version};

use crate::error::{Error, Result};
use crate::text::encode_base32;

/// A QR code holding an artifact.
pub struct Qr {
    code: QrCode,
}

impl Qr {
    /// The QR code (level M, alphanumeric mode) of the artifact `bytes`.
    pub fn new(bytes: &[u8]) -> Result<Self> {
        let code =
            QrCode::with_error_correction_level(encode_base32(bytes), EcLevel::M).map_err(|e| {
                Error::InvalidValue {
                    field: "qr code",
                    reason: match e {
                        qrcode::types::QrError::DataTooLong => "artifact too large for a QR code",
                        _ => "QR encoding failed",
                    },
                }
            })?;
        Ok(Self { code })
    }

    /// The QR version (1–40): the code is `17 + 4·version` modules wide.
    pub fn version(&self) -> u8 {
        match self.code.version() {
            Version::Normal(v) | Version::Micro(v) => v as u8,
        }
    }

    /// Modules per side.
    pub fn width(&self) -> usize {
        self.code.width()
    }

    /// The code drawn with Unicode half blocks (two modules per character cell), with a quiet
    /// zone, dark modules as spaces on a light background so it scans on dark terminals too.
    pub fn to_terminal(&self) -> String {
        self.code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build()
    }

    /// The code as an SVG document (8 px per module).
    pub fn to_svg(&self) -> String {
        self.code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build()
    }
}

impl core::fmt::Debug for Qr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Qr(version {})", self.version())
    }
}
