#!/usr/bin/env bash
# claim.sh is the claim eipclaim replaces, scripted the usual way with curl
# and the aws CLI v1, for the benchmark in tools/bench/main.go only: it is not a
# product, has no retries, no takeover policy and no health check.
#
# It reads the instance id, region and user-data from IMDS (IMDSv2), finds
# the primary interface, associates the EIP named by allocation_id if it is
# free (--no-allow-reassociation), reads it back, tags it as eipclaim does,
# and UPSERTs the Route 53 CNAME of dns.route53 to the EIP's public DNS name.
# The user-data is the subset of eipclaim's schema that tools/bench/ writes:
#
#   role: db
#   roles:
#     db:
#       allocation_id: eipalloc-...
#       dns:
#         route53: {zone_id: Z..., name: db.example.internal, ttl: 60}
#
# Environment: AWS_EC2_METADATA_SERVICE_ENDPOINT (default
# http://169.254.169.254), and the aws CLI's own (AWS_ENDPOINT_URL, ...).
# Exit codes as eipclaim's: 0 done, 1 failed, 4 held by another instance.
set -euo pipefail

imds=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}
imds=${imds%/}
token=$(curl -sSf -X PUT "$imds/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300")
md() { curl -sSf -H "X-aws-ec2-metadata-token: $token" "$imds/latest/$1"; }
instance_id=$(md meta-data/instance-id)
region=$(md meta-data/placement/region)
user_data=$(md user-data)

field() { sed -n "s/.*[{ ,]$1: *\([^,} ]*\).*/\1/p" <<<"$user_data" | head -n1; }
role=$(sed -n 's/^role: *//p' <<<"$user_data")
alloc=$(sed -n 's/^ *allocation_id: *//p' <<<"$user_data")
zone_id=$(field zone_id)
name=$(field name)
ttl=$(field ttl)
if [[ -z "$alloc" || -z "$zone_id" || -z "$name" || -z "$ttl" ]]; then
	echo "claim.sh: user-data lacks allocation_id or dns.route53 {zone_id, name, ttl}" >&2
	exit 2
fi
export AWS_DEFAULT_REGION=$region

# shellcheck disable=SC2016 # backquotes are a JMESPath literal
eni=$(aws ec2 describe-instances --instance-ids "$instance_id" --output text \
	--query 'Reservations[0].Instances[0].NetworkInterfaces[?Attachment.DeviceIndex==`0`].NetworkInterfaceId')
read -r public_ip holder < <(aws ec2 describe-addresses --allocation-ids "$alloc" --output text \
	--query "Addresses[0].[PublicIp, NetworkInterfaceId || 'free']")
if [[ "$holder" != "$eni" ]]; then
	if [[ "$holder" != free ]]; then
		echo "claim.sh: $alloc is held by $holder" >&2
		exit 4
	fi
	aws ec2 associate-address --allocation-id "$alloc" --network-interface-id "$eni" \
		--no-allow-reassociation --output text >/dev/null
	now=$(aws ec2 describe-addresses --allocation-ids "$alloc" --output text \
		--query 'Addresses[0].NetworkInterfaceId')
	if [[ "$now" != "$eni" ]]; then
		echo "claim.sh: read back: $alloc is on $now, not $eni" >&2
		exit 1
	fi
	aws ec2 create-tags --resources "$alloc" --tags "Key=eipclaim:holder,Value=$instance_id" \
		"Key=eipclaim:claimed-at,Value=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
fi

dashed=${public_ip//./-}
case $region in
us-east-1) target=ec2-$dashed.compute-1.amazonaws.com ;;
cn-*) target=ec2-$dashed.$region.compute.amazonaws.com.cn ;;
*) target=ec2-$dashed.$region.compute.amazonaws.com ;;
esac
aws route53 change-resource-record-sets --hosted-zone-id "$zone_id" --output text --change-batch \
	"{\"Changes\":[{\"Action\":\"UPSERT\",\"ResourceRecordSet\":{\"Name\":\"$name\",\"Type\":\"CNAME\",\"TTL\":$ttl,\"ResourceRecords\":[{\"Value\":\"$target\"}]}}]}" >/dev/null
echo "$role: claimed $public_ip ($alloc) on $instance_id $eni; $name CNAME $target"
