//! Frames built byte by byte, decoded down to TCP.

use mtls_capture::{Decoded, LinkType, PacketError, Skipped, decode};

use crate::util::*;

fn tcp_of(link: LinkType, frame: &[u8]) -> mtls_capture::Segment<'_> {
    match decode(link, frame) {
        Ok(Decoded::Tcp(segment)) => segment,
        other => panic!("expected TCP, got {other:?}"),
    }
}

#[test]
fn ethernet_with_stacked_vlans_ipv4_options_and_tcp_options() {
    let t = tcp(50000, 443, 1000, 7, ACK | PSH, 12, b"hi");
    let ip = ipv4(ip4("10.0.0.1"), ip4("10.0.0.2"), 6, 8, 0x4000, &t); // DF set, options
    let mut frame = ethernet(&[(0x88a8, 100), (0x8100, 200)], 0x0800, &ip);
    frame.extend_from_slice(b"trailer"); // padding, or a frame check sequence
    let s = tcp_of(LinkType::Ethernet, &frame);
    assert_eq!(s.src, addr("10.0.0.1:50000"));
    assert_eq!(s.dst, addr("10.0.0.2:443"));
    assert_eq!((s.seq, s.ack), (1000, 7));
    assert!(s.flags.ack && !s.flags.syn && !s.flags.fin && !s.flags.rst);
    assert_eq!(s.payload, b"hi", "padding is not payload");
}

#[test]
fn sll2_ipv6_with_extension_headers() {
    let t = tcp(443, 40000, 5, 6, SYN | ACK, 0, b"");
    let ip = ipv6(
        ip6("2001:db8::1"),
        ip6("2001:db8::2"),
        6,
        &[(0, 0), (60, 1), (43, 0)],
        &t,
    );
    let frame = sll2(0x86dd, &ip);
    let s = tcp_of(LinkType::LinuxSll2, &frame);
    assert_eq!(s.src, addr("[2001:db8::1]:443"));
    assert_eq!(s.dst, addr("[2001:db8::2]:40000"));
    assert!(s.flags.syn && s.flags.ack);
    assert!(s.payload.is_empty());
}

#[test]
fn sll_null_loop_and_raw() {
    let t = tcp(1, 2, 3, 4, FIN | ACK, 0, b"bye");
    let v4 = ipv4(ip4("127.0.0.1"), ip4("127.0.0.1"), 6, 0, 0, &t);
    let v6 = ipv6(ip6("::1"), ip6("::1"), 6, &[], &t);
    assert_eq!(
        tcp_of(LinkType::LinuxSll, &sll(0x0800, &v4)).payload,
        b"bye"
    );
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&v4);
    assert!(tcp_of(LinkType::Null, &null).flags.fin);
    let mut lo = 24u32.to_be_bytes().to_vec();
    lo.extend_from_slice(&v6);
    assert_eq!(tcp_of(LinkType::Loop, &lo).src, addr("[::1]:1"));
    assert_eq!(tcp_of(LinkType::Raw, &v6).payload, b"bye");
    assert_eq!(tcp_of(LinkType::Ipv4, &v4).payload, b"bye");
    assert_eq!(tcp_of(LinkType::Ipv6, &v6).payload, b"bye");
}

#[test]
fn what_is_not_tcp_is_skipped_with_the_reason() {
    let t = tcp(1, 2, 3, 4, ACK, 0, b"x");
    let first_fragment = ipv4(ip4("10.0.0.1"), ip4("10.0.0.2"), 6, 0, 0x2000, &t);
    assert_eq!(
        decode(LinkType::Raw, &first_fragment),
        Ok(Decoded::Skipped(Skipped::Fragment))
    );
    let later_fragment = ipv4(ip4("10.0.0.1"), ip4("10.0.0.2"), 6, 0, 0x0010, &t);
    assert_eq!(
        decode(LinkType::Raw, &later_fragment),
        Ok(Decoded::Skipped(Skipped::Fragment))
    );
    let v6_fragment = ipv6(ip6("::1"), ip6("::2"), 6, &[(44, 0)], &t);
    assert_eq!(
        decode(LinkType::Raw, &v6_fragment),
        Ok(Decoded::Skipped(Skipped::Fragment))
    );
    let udp = ipv4(ip4("10.0.0.1"), ip4("10.0.0.2"), 17, 0, 0, b"12345678");
    assert_eq!(
        decode(LinkType::Raw, &udp),
        Ok(Decoded::Skipped(Skipped::NotTcp(17)))
    );
    let arp = ethernet(&[], 0x0806, &[0; 28]);
    assert_eq!(
        decode(LinkType::Ethernet, &arp),
        Ok(Decoded::Skipped(Skipped::NotIp(0x0806)))
    );
    assert_eq!(
        decode(LinkType::Other(147), b"whatever"),
        Ok(Decoded::Skipped(Skipped::UnsupportedLink(LinkType::Other(
            147
        ))))
    );
}

#[test]
fn short_or_impossible_headers_are_errors() {
    let t = tcp(1, 2, 3, 4, ACK, 8, b"payload");
    let v4 = ipv4(ip4("10.0.0.1"), ip4("10.0.0.2"), 6, 0, 0, &t);
    for cut in 0..v4.len() {
        let result = decode(LinkType::Raw, &v4[..cut]);
        assert!(
            matches!(result, Err(PacketError::Truncated { .. })),
            "cut {cut}: {result:?}"
        );
    }
    let mut bad_offset = v4.clone();
    bad_offset[20 + 12] = 0x20; // TCP data offset 8 bytes
    assert!(matches!(
        decode(LinkType::Raw, &bad_offset),
        Err(PacketError::Malformed { .. })
    ));
    let mut bad_ihl = v4.clone();
    bad_ihl[0] = 0x44;
    assert!(matches!(
        decode(LinkType::Raw, &bad_ihl),
        Err(PacketError::Malformed { .. })
    ));
}
