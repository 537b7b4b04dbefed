/**
 * Operation names that become metric labels: the web client's operations
 * (web/src/graphql/operations.graphql; a unit test keeps the two in step) and the names the
 * documentation uses. Any other name is labelled `other`: clients choose names, and the
 * registry must not grow with them or let the first comers take every slot.
 */
export const KNOWN_OPERATION_NAMES: readonly string[] = [
  'Me',
  'Messages',
  'OnlineUsers',
  'Conversations',
  'ConversationUpdated',
  'SendMessage',
  'SetTyping',
  'MarkRead',
  'ResetIdentity',
  'MessageAdded',
  'Typing',
  'PresenceChanged',
  'MessagesRead',
  'MyRooms',
  'PublicRooms',
  'RoomBySlug',
  'CreateRoom',
  'JoinRoom',
  'LeaveRoom',
  'FindStranger',
  'LeaveStrangerQueue',
  'EndStrangerChat',
  'StrangerChat',
  'StrangerEvents',
  'MessageUpdatesCursor',
  'MessageUpdated',
  'EditMessage',
  'DeleteMessage',
  'React',
  'SetMessageTtl',
  'DeleteMyData',
  'IsModerator',
  'Reports',
  'ReportContext',
  'ClearReport',
  'BanUser',
];
