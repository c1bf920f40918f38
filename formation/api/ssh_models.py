"""What sshd's AuthorizedKeysCommand (`formation ssh-keys`) reads from the node."""


from pydantic import BaseModel, ConfigDict, Field


class AuthorizedKey(BaseModel):
    model_config = ConfigDict(defer_build=True)  # built on first use, not at the node's start

    line: str = Field(description="one authorized_keys line: type, base64 key, comment")
    source: str = Field(description="'setting' (admin_ssh_keys of this node) or "
                                    "'account:NAME' (an admin account of the replicated state)")


class AuthorizedKeys(BaseModel):
    model_config = ConfigDict(defer_build=True)

    keys: list[AuthorizedKey] = Field(default_factory=list)
    network: bool = Field(False, description="whether the replicated admin list was read "
                                             "(false before the node founds or joins a network)")
