from oidc_provider.lib.claims import ScopeClaims


def userinfo(claims, user):
    claims["email"] = user.email
    claims["email_verified"] = True
    claims["preferred_username"] = user.username
    claims["name"] = user.get_full_name() or user.username
    return claims


class GroupClaims(ScopeClaims):
    info_groups = ("Groups", "The groups you belong to.")

    def scope_groups(self):
        return {"groups": sorted(self.user.groups.values_list("name", flat=True))}
