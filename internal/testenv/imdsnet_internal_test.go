package testenv

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// eni is an attached interface as moto 5.2.1 describes it: the public IP
// on the interface's Association, none per private address.
func eni(id, mac string, device int32, public string, private ...string) types.NetworkInterface {
	n := types.NetworkInterface{
		NetworkInterfaceId: aws.String(id), MacAddress: aws.String(mac),
		SubnetId: aws.String("subnet-1"), VpcId: aws.String("vpc-1"),
		Attachment:       &types.NetworkInterfaceAttachment{DeviceIndex: aws.Int32(device)},
		PrivateIpAddress: aws.String(private[0]),
	}
	for i, p := range private {
		n.PrivateIpAddresses = append(n.PrivateIpAddresses, types.NetworkInterfacePrivateIpAddress{PrivateIpAddress: aws.String(p), Primary: aws.Bool(i == 0)})
	}
	if public != "" {
		n.Association = &types.NetworkInterfaceAssociation{PublicIp: aws.String(public)}
	}
	return n
}

func addr(public, eniID, private string) types.Address {
	a := types.Address{PublicIp: aws.String(public), AllocationId: aws.String("eipalloc-" + public)}
	if eniID != "" {
		a.NetworkInterfaceId, a.PrivateIpAddress = aws.String(eniID), aws.String(private)
	}
	return a
}

func TestIMDSAnswer(t *testing.T) {
	const macA, macB = "02:00:00:aa:aa:aa", "02:00:00:bb:bb:bb"
	ma, mb := "network/interfaces/macs/"+macA+"/", "network/interfaces/macs/"+macB+"/"
	type q struct{ path, want string } // want "404": not found
	for _, tc := range []struct {
		name  string
		enis  []types.NetworkInterface
		addrs []types.Address
		qs    []q
	}{{
		name: "auto-assigned public IP, no Elastic IP",
		enis: []types.NetworkInterface{eni("eni-a", macA, 0, "54.0.0.1", "10.0.0.1")},
		qs: []q{
			{"mac", macA}, {"local-ipv4", "10.0.0.1"}, {"public-ipv4", "54.0.0.1"},
			{"network", "interfaces/"}, {"network/interfaces", "macs/"}, {"network/interfaces/macs", macA + "/"},
			{ma, "device-number\ninterface-id\nipv4-associations/\nlocal-ipv4s\nmac\npublic-ipv4s\nsubnet-id\nvpc-id"},
			{ma + "public-ipv4s", "54.0.0.1"}, {ma + "ipv4-associations/54.0.0.1", "10.0.0.1"},
			{ma + "subnet-id", "subnet-1"}, {ma + "vpc-id", "vpc-1"}, {ma + "interface-id", "eni-a"},
		},
	}, {
		name:  "the Elastic IP moved away: moto's stale interface association does not count",
		enis:  []types.NetworkInterface{eni("eni-a", macA, 0, "127.0.0.9", "10.0.0.1")},
		addrs: []types.Address{addr("127.0.0.9", "eni-other", "10.0.0.7")},
		qs: []q{
			{"public-ipv4", "404"}, {ma + "public-ipv4s", "404"}, {ma + "ipv4-associations/", "404"},
			{ma + "ipv4-associations/127.0.0.9", "404"}, {ma, "device-number\ninterface-id\nlocal-ipv4s\nmac\nsubnet-id\nvpc-id"},
		},
	}, {
		name:  "the Elastic IP free: stale association does not count",
		enis:  []types.NetworkInterface{eni("eni-a", macA, 0, "127.0.0.9", "10.0.0.1")},
		addrs: []types.Address{addr("127.0.0.9", "", "")},
		qs:    []q{{"public-ipv4", "404"}, {ma + "ipv4-associations/127.0.0.9", "404"}},
	}, {
		name: "Elastic IP on a secondary address of a second interface",
		enis: []types.NetworkInterface{
			eni("eni-b", macB, 1, "", "10.0.1.1", "10.0.1.2"),
			eni("eni-a", macA, 0, "54.0.0.1", "10.0.0.1"),
		},
		addrs: []types.Address{addr("127.0.0.9", "eni-b", "10.0.1.2"), addr("127.0.0.8", "eni-b", "10.0.1.1")},
		qs: []q{
			{"mac", macA}, {"public-ipv4", "54.0.0.1"}, {"network/interfaces/macs/", macA + "/\n" + macB + "/"},
			{mb + "device-number", "1"}, {mb + "local-ipv4s", "10.0.1.1\n10.0.1.2"},
			{mb + "public-ipv4s", "127.0.0.8\n127.0.0.9"}, {mb + "ipv4-associations/", "127.0.0.8\n127.0.0.9"},
			{mb + "ipv4-associations/127.0.0.9", "10.0.1.2"}, {mb + "ipv4-associations/127.0.0.1", "404"},
			{"network/interfaces/macs/" + strings.ToUpper(macB) + "/interface-id", "eni-b"},
			{mb + "security-groups", "404"}, {"network/interfaces/macs/02:00:00:00:00:00/mac", "404"},
		},
	}, {
		name: "an Elastic IP on the primary address replaces the auto-assigned IP",
		enis: []types.NetworkInterface{func() types.NetworkInterface {
			n := eni("eni-a", macA, 0, "", "10.0.0.1")
			n.PrivateIpAddresses[0].Association = &types.NetworkInterfaceAssociation{PublicIp: aws.String("54.0.0.1")}
			return n
		}()},
		addrs: []types.Address{addr("127.0.0.9", "eni-a", "10.0.0.1")},
		qs:    []q{{"public-ipv4", "127.0.0.9"}, {ma + "public-ipv4s", "127.0.0.9"}},
	}, {
		name: "no interface (not an instance of moto)",
		qs:   []q{{"mac", "404"}, {"local-ipv4", "404"}, {"public-ipv4", "404"}, {"network/interfaces/macs/", "404"}, {"network/interfaces/", "macs/"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ifs, err := imdsInterfaces(tc.enis, tc.addrs)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range tc.qs {
				got, ok := imdsAnswer(ifs, q.path)
				if !ok {
					got = "404"
				}
				if got != q.want {
					t.Errorf("%s = %q, want %q", q.path, got, q.want)
				}
			}
		})
	}
}

func TestIMDSInterfacesWithoutMAC(t *testing.T) {
	n := eni("eni-a", "", 0, "", "10.0.0.1")
	if _, err := imdsInterfaces([]types.NetworkInterface{n}, nil); err == nil || !strings.Contains(err.Error(), "eni-a") {
		t.Errorf("imdsInterfaces of an interface without a MAC: err = %v, want one naming eni-a", err)
	}
}

func TestIMDSLayerMotoWithoutInstance(t *testing.T) {
	_, err := startIMDSLayer("http://127.0.0.1:1", IMDSOptions{Moto: &Moto{}})
	if err == nil || !strings.Contains(err.Error(), "InstanceID") {
		t.Errorf("startIMDSLayer with Moto and no InstanceID: err = %v, want one naming InstanceID", err)
	}
}
