export function Avatar({ user, size = 28 }: { user: { username: string; avatarUrl: string }; size?: number }) {
  return <img className="avatar" src={user.avatarUrl} alt="" width={size} height={size} title={user.username} />;
}
