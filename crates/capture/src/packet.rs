//! From a captured frame to a TCP segment: link layer, IP, TCP.
//!
//! `mtls trace` only needs TCP, so every other kind of packet is [`Decoded::Skipped`] with
//! the reason (the caller may count them), and only bytes that claim to be TCP but cannot
//! be are a [`PacketError`]. IP fragments are skipped rather than reassembled: TCP
//! endpoints avoid fragmentation (path MTU discovery), so they are rare in practice, and
//! reassembling them would need its own bounded buffer for little gain. The payload is
//! borrowed from the frame, cut to the IP length so Ethernet padding never leaks into the
//! stream.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::reader::LinkType;

/// One TCP segment, borrowed from its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number of the first payload byte (of the SYN, when `flags.syn`).
    pub seq: u32,
    /// Acknowledgment number (meaningful when `flags.ack`).
    pub ack: u32,
    /// The flags reassembly cares about.
    pub flags: TcpFlags,
    /// The TCP payload.
    pub payload: &'a [u8],
}

/// TCP flags used by reassembly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFlags {
    /// SYN: the sequence number is the initial one.
    pub syn: bool,
    /// ACK.
    pub ack: bool,
    /// FIN: the sender has no more bytes.
    pub fin: bool,
    /// RST: the connection is gone.
    pub rst: bool,
}

/// What a frame turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A TCP segment.
    Tcp(Segment<'a>),
    /// Something that is not for reassembly.
    Skipped(Skipped),
}

/// Why a frame was not decoded to TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Skipped {
    /// A link type this crate does not decode.
    UnsupportedLink(LinkType),
    /// Neither IPv4 nor IPv6 (ARP, LLDP, ...): the EtherType or address family.
    NotIp(u32),
    /// IP, but another protocol (UDP, ICMP, ...): its protocol number.
    NotTcp(u8),
    /// An IPv4 or IPv6 fragment.
    Fragment,
}

/// A frame that claims to be IP/TCP but is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// The frame ends before the header it claims (often a short snapshot length).
    #[error("{layer} header truncated: {needed} bytes needed, {present} captured")]
    Truncated {
        /// Which layer.
        layer: &'static str,
        /// Bytes the layer needs.
        needed: usize,
        /// Bytes present.
        present: usize,
    },
    /// A header field is impossible.
    #[error("malformed {layer} header: {reason}")]
    Malformed {
        /// Which layer.
        layer: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Decode a frame of link type `link` down to TCP.
pub fn decode(link: LinkType, data: &[u8]) -> Result<Decoded<'_>, PacketError> {
    match link {
        LinkType::Ethernet => ethernet(data),
        LinkType::Null | LinkType::Loop => {
            // The family is in the capturing host's byte order for Null and its numbers
            // differ between systems (AF_INET6 is 10, 24, 28 or 30); the IP version
            // nibble says the same thing unambiguously.
            ip(take(data, 4, "loopback")?.1)
        }
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => ip(data),
        LinkType::LinuxSll => {
            let (head, rest) = take(data, 16, "Linux cooked (SLL)")?;
            by_ethertype(u16::from_be_bytes([head[14], head[15]]), rest)
        }
        LinkType::LinuxSll2 => {
            let (head, rest) = take(data, 20, "Linux cooked (SLL2)")?;
            by_ethertype(u16::from_be_bytes([head[0], head[1]]), rest)
        }
        other => Ok(Decoded::Skipped(Skipped::UnsupportedLink(other))),
    }
}

fn ethernet(data: &[u8]) -> Result<Decoded<'_>, PacketError> {
    let (head, mut rest) = take(data, 14, "Ethernet")?;
    let mut ethertype = u16::from_be_bytes([head[12], head[13]]);
    // 802.1Q, 802.1ad (QinQ) and the older 0x9100 QinQ tag: 2 bytes of tag control, then
    // the next EtherType. Bounded by the frame length, so stacked tags cannot loop forever.
    while matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) {
        let (tag, after) = take(rest, 4, "802.1Q VLAN tag")?;
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        rest = after;
    }
    by_ethertype(ethertype, rest)
}

fn by_ethertype(ethertype: u16, rest: &[u8]) -> Result<Decoded<'_>, PacketError> {
    match ethertype {
        0x0800 => ipv4(rest),
        0x86dd => ipv6(rest),
        other => Ok(Decoded::Skipped(Skipped::NotIp(u32::from(other)))),
    }
}

fn ip(data: &[u8]) -> Result<Decoded<'_>, PacketError> {
    match data.first().map(|b| b >> 4) {
        Some(4) => ipv4(data),
        Some(6) => ipv6(data),
        Some(v) => Ok(Decoded::Skipped(Skipped::NotIp(u32::from(v)))),
        None => Err(PacketError::Truncated {
            layer: "IP",
            needed: 1,
            present: 0,
        }),
    }
}

fn ipv4(data: &[u8]) -> Result<Decoded<'_>, PacketError> {
    let (fixed, _) = take(data, 20, "IPv4")?;
    let version = fixed[0] >> 4;
    let header_len = usize::from(fixed[0] & 0x0f) * 4;
    if version != 4 || header_len < 20 {
        return Err(malformed(
            "IPv4",
            format!("version {version}, header length {header_len}"),
        ));
    }
    let total = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
    // A total length of 0 is what TSO-offloaded captures show; trust the frame then.
    let total = if total == 0 { data.len() } else { total };
    if total < header_len {
        return Err(malformed(
            "IPv4",
            format!("total length {total} < header {header_len}"),
        ));
    }
    let packet = data.get(..total).ok_or(PacketError::Truncated {
        layer: "IPv4 payload",
        needed: total,
        present: data.len(),
    })?;
    let (_, payload) = take(packet, header_len, "IPv4 options")?;
    let flags_fragment = u16::from_be_bytes([fixed[6], fixed[7]]);
    if flags_fragment & 0x3fff != 0 {
        return Ok(Decoded::Skipped(Skipped::Fragment));
    }
    let protocol = fixed[9];
    if protocol != 6 {
        return Ok(Decoded::Skipped(Skipped::NotTcp(protocol)));
    }
    let src = Ipv4Addr::new(fixed[12], fixed[13], fixed[14], fixed[15]);
    let dst = Ipv4Addr::new(fixed[16], fixed[17], fixed[18], fixed[19]);
    tcp(IpAddr::V4(src), IpAddr::V4(dst), payload)
}

fn ipv6(data: &[u8]) -> Result<Decoded<'_>, PacketError> {
    let (fixed, rest) = take(data, 40, "IPv6")?;
    if fixed[0] >> 4 != 6 {
        return Err(malformed("IPv6", format!("version {}", fixed[0] >> 4)));
    }
    let payload_len = usize::from(u16::from_be_bytes([fixed[4], fixed[5]]));
    // 0 means a jumbogram (or TSO); the frame is the only length then.
    let mut rest = if payload_len == 0 {
        rest
    } else {
        rest.get(..payload_len).ok_or(PacketError::Truncated {
            layer: "IPv6 payload",
            needed: payload_len,
            present: rest.len(),
        })?
    };
    let mut next = fixed[6];
    loop {
        match next {
            6 => break,
            // Hop-by-hop, routing, destination options: (length + 1) * 8 bytes.
            0 | 43 | 60 => {
                let (head, _) = take(rest, 8, "IPv6 extension header")?;
                let len = (usize::from(head[1]) + 1) * 8;
                next = head[0];
                rest = take(rest, len, "IPv6 extension header")?.1;
            }
            // Authentication header: (length + 2) * 4 bytes.
            51 => {
                let (head, _) = take(rest, 8, "IPv6 authentication header")?;
                let len = (usize::from(head[1]) + 2) * 4;
                next = head[0];
                rest = take(rest, len, "IPv6 authentication header")?.1;
            }
            44 => return Ok(Decoded::Skipped(Skipped::Fragment)),
            other => return Ok(Decoded::Skipped(Skipped::NotTcp(other))),
        }
    }
    let mut src = [0u8; 16];
    src.copy_from_slice(&fixed[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&fixed[24..40]);
    tcp(
        IpAddr::V6(Ipv6Addr::from(src)),
        IpAddr::V6(Ipv6Addr::from(dst)),
        rest,
    )
}

fn tcp(src: IpAddr, dst: IpAddr, data: &[u8]) -> Result<Decoded<'_>, PacketError> {
    let (h, _) = take(data, 20, "TCP")?;
    let header_len = usize::from(h[12] >> 4) * 4;
    if header_len < 20 {
        return Err(malformed("TCP", format!("data offset {header_len} bytes")));
    }
    let (_, payload) = take(data, header_len, "TCP options")?;
    let flags = h[13];
    Ok(Decoded::Tcp(Segment {
        src: SocketAddr::new(src, u16::from_be_bytes([h[0], h[1]])),
        dst: SocketAddr::new(dst, u16::from_be_bytes([h[2], h[3]])),
        seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        flags: TcpFlags {
            fin: flags & 0x01 != 0,
            syn: flags & 0x02 != 0,
            rst: flags & 0x04 != 0,
            ack: flags & 0x10 != 0,
        },
        payload,
    }))
}

/// Split `n` bytes off the front, or say which layer is cut short.
fn take<'a>(
    data: &'a [u8],
    n: usize,
    layer: &'static str,
) -> Result<(&'a [u8], &'a [u8]), PacketError> {
    if data.len() < n {
        return Err(PacketError::Truncated {
            layer,
            needed: n,
            present: data.len(),
        });
    }
    Ok(data.split_at(n))
}

fn malformed(layer: &'static str, reason: String) -> PacketError {
    PacketError::Malformed { layer, reason }
}
