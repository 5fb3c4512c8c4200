//! Answers moto gives in a shape AWS never does, reshaped by [`crate::ThrottlingProxy`] on their way
//! back to the function under test.
//!
//! **Load balancer interfaces.** AWS creates a Network Load Balancer's interfaces itself: they are
//! requester-managed (`requesterManaged` true, `requesterId` `amazon-elb`), of `interfaceType`
//! `network_load_balancer`, described `ELB net/<name>/<id>`. moto creates no interfaces for load
//! balancers, and an interface created through its API is never requester-managed — exactly what a
//! forged interface looks like on AWS. So a test seeds a load balancer's interfaces with
//! [`crate::local::nlb_interface`], which marks them with the tag [`AWS_MANAGED_TAG`], and the proxy
//! answers DescribeNetworkInterfaces for those as AWS would, without the marker. An interface created
//! without it (a forgery, a decoy) stays as moto gives it.

/// The tag (on an interface in moto) that makes the proxy answer for it as for an interface AWS made;
/// its value is the `interfaceType` answered (`network_load_balancer`).
pub const AWS_MANAGED_TAG: &str = "testkit:aws-managed";

/// The requester AWS names on a load balancer's interfaces.
pub const ELB_REQUESTER_ID: &str = "amazon-elb";

/// `body` (an EC2 query-protocol XML answer to DescribeNetworkInterfaces) with every interface tagged
/// [`AWS_MANAGED_TAG`] in AWS's shape; anything else unchanged.
pub fn aws_shaped_interfaces(body: &str) -> String {
    let (open, close) = ("<networkInterfaceSet>", "</networkInterfaceSet>");
    let (Some(start), Some(end)) = (body.find(open), body.rfind(close)) else {
        return body.to_owned();
    };
    let inner = &body[start + open.len()..end];
    let mut out = String::with_capacity(body.len());
    out.push_str(&body[..start + open.len()]);
    for item in top_level_items(inner) {
        out.push_str(&reshape(item));
    }
    out.push_str(&body[end..]);
    out
}

/// The `<item>…</item>` elements directly inside a set (items nest: addresses, groups, tags).
fn top_level_items(inner: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut from, mut at) = (0usize, 0usize, 0usize);
    while at < inner.len() {
        let rest = &inner[at..];
        if rest.starts_with("<item>") {
            if depth == 0 {
                from = at;
            }
            depth += 1;
            at += "<item>".len();
        } else if rest.starts_with("</item>") {
            depth = depth.saturating_sub(1);
            at += "</item>".len();
            if depth == 0 {
                items.push(&inner[from..at]);
            }
        } else {
            at += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    items
}

fn reshape(item: &str) -> String {
    let marker = format!("<key>{AWS_MANAGED_TAG}</key><value>");
    let Some(at) = item.find(&marker) else {
        return item.to_owned();
    };
    let value_start = at + marker.len();
    let Some(value_len) = item[value_start..].find("</value>") else {
        return item.to_owned();
    };
    let interface_type = item[value_start..value_start + value_len].to_owned();
    // Drop the marker's own `<item>` from the tag set.
    let tag_start = item[..at].rfind("<item>").unwrap_or(at);
    let tag_end = value_start + value_len + "</value></item>".len();
    let mut shaped = format!("{}{}", &item[..tag_start], &item[tag_end.min(item.len())..]);
    shaped = shaped.replace("<tagSet></tagSet>", "<tagSet/>");
    shaped = set_element(&shaped, "interfaceType", &interface_type);
    shaped = set_element(&shaped, "requesterManaged", "true");
    set_element(&shaped, "requesterId", ELB_REQUESTER_ID)
}

/// `<name>value</name>` in place of the element's value, or added before the item's end.
fn set_element(item: &str, name: &str, value: &str) -> String {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let element = format!("{open}{value}{close}");
    let direct = |s: &str| s.find(&open).and_then(|a| s[a..].find(&close).map(|b| (a, a + b + close.len())));
    if let Some((a, b)) = direct(item) {
        return format!("{}{element}{}", &item[..a], &item[b..]);
    }
    let empty = format!("<{name}/>");
    if let Some(a) = item.find(&empty) {
        return format!("{}{element}{}", &item[..a], &item[a + empty.len()..]);
    }
    let end = item.len() - "</item>".len();
    format!("{}{element}{}", &item[..end], &item[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOTO: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<DescribeNetworkInterfacesResponse \
        xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15\"><networkInterfaceSet>\
        <item><description>ELB net/x/0123456789abcdef</description><groupSet><item><groupId>sg-1</groupId></item>\
        </groupSet><interfaceType>interface</interfaceType><networkInterfaceId>eni-managed</networkInterfaceId>\
        <privateIpAddressesSet><item><primary>true</primary><privateIpAddress>10.0.0.5</privateIpAddress></item>\
        </privateIpAddressesSet><requesterId>AIDAIT2UOQQY3AUEMOTO</requesterId><requesterManaged>false\
        </requesterManaged><tagSet><item><key>testkit:aws-managed</key><value>network_load_balancer</value></item>\
        <item><key>team</key><value>net</value></item></tagSet><vpcId>vpc-1</vpcId></item>\
        <item><description>ELB net/x/0123456789abcdef</description><interfaceType>interface</interfaceType>\
        <networkInterfaceId>eni-forged</networkInterfaceId><requesterId>AIDAIT2UOQQY3AUEMOTO</requesterId>\
        <requesterManaged>false</requesterManaged><tagSet/><vpcId>vpc-1</vpcId></item>\
        </networkInterfaceSet><requestId>request-id</requestId></DescribeNetworkInterfacesResponse>";

    #[test]
    fn marked_interfaces_are_answered_as_aws_made_them_and_others_as_moto_did() {
        let shaped = aws_shaped_interfaces(MOTO);
        let items = top_level_items(&shaped[shaped.find("<networkInterfaceSet>").unwrap() + 21..]);
        assert_eq!(items.len(), 2, "{shaped}");
        let (managed, forged) = (items[0], items[1]);
        assert!(managed.contains("<interfaceType>network_load_balancer</interfaceType>"), "{managed}");
        assert!(managed.contains("<requesterManaged>true</requesterManaged>"), "{managed}");
        assert!(managed.contains("<requesterId>amazon-elb</requesterId>"), "{managed}");
        assert!(!managed.contains(AWS_MANAGED_TAG), "the marker is not answered: {managed}");
        assert!(managed.contains("<item><key>team</key><value>net</value></item>"), "other tags stay: {managed}");
        assert!(managed.contains("<privateIpAddress>10.0.0.5</privateIpAddress>"), "{managed}");
        assert!(forged.contains("<requesterManaged>false</requesterManaged>"), "{forged}");
        assert!(forged.contains("<interfaceType>interface</interfaceType>"), "{forged}");
        assert!(shaped.ends_with("<requestId>request-id</requestId></DescribeNetworkInterfacesResponse>"));
    }

    #[test]
    fn other_answers_pass_unchanged() {
        let other = "<DescribeSecurityGroupsResponse><securityGroupInfo/></DescribeSecurityGroupsResponse>";
        assert_eq!(aws_shaped_interfaces(other), other);
    }
}
